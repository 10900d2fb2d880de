import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { signedMessageBytes } from '../../test/support/signed-message.js';
import { fromPlainValue, getMember, getPath, parseRawJson, serializePythonCompact, toPlainValue } from './raw-json.js';
import type { JsonNode } from './raw-json.js';
import {
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  canonicalSignedText,
  computePortSignature,
  timestampText,
  verifyIncomingSignature,
} from './signature.js';

// The fixture holds NaN and Infinity (Python's json writes them), which JSON.parse refuses.
const FIXTURE_URL = new URL('../../test/fixtures/incoming-signatures.json', import.meta.url);

interface SignatureCase {
  name: string;
  valid: boolean;
  canonical: string | undefined;
  message: JsonNode;
  wires: { spelling: string; text: string }[];
}

function stringAt(node: JsonNode | undefined, what: string): string {
  assert.ok(node?.type === 'string', `fixture: ${what} should be a string`);
  return node.value;
}

function readFixture(): { secret: string; timestamp: JsonNode; changelogExample: JsonNode; cases: SignatureCase[] } {
  const root = parseRawJson(readFileSync(FIXTURE_URL));
  const cases = getMember(root, 'cases');
  assert.ok(cases?.type === 'array' && cases.items.length > 0, 'fixture: cases should be a non-empty array');
  const timestamp = getMember(root, 'timestamp');
  const changelogExample = getMember(root, 'changelog_unsigned_example');
  assert.ok(timestamp !== undefined && changelogExample !== undefined, 'fixture: timestamp and changelog_unsigned_example');
  return {
    secret: stringAt(getMember(root, 'secret'), 'secret'),
    timestamp,
    changelogExample,
    cases: cases.items.map((item): SignatureCase => {
      const name = stringAt(getMember(item, 'name'), 'case name');
      const valid = getMember(item, 'valid');
      assert.ok(valid?.type === 'boolean', `fixture: ${name}.valid`);
      const canonical = getMember(item, 'canonical');
      const message = getMember(item, 'message');
      const wire = getMember(item, 'wire');
      assert.ok(message !== undefined && wire?.type === 'object', `fixture: ${name}.message and .wire`);
      return {
        name,
        valid: valid.value,
        canonical: canonical === undefined || canonical.type === 'null' ? undefined : stringAt(canonical, `${name}.canonical`),
        message,
        wires: ['compact', 'python_default'].map((spelling) => ({
          spelling,
          text: stringAt(getMember(wire, spelling), `${name}.wire.${spelling}`),
        })),
      };
    }),
  };
}

const fixture = readFixture();

function caseNamed(name: string): SignatureCase {
  const found = fixture.cases.find((entry) => entry.name === name);
  assert.ok(found, `fixture: no case named ${name}`);
  return found;
}

function verify(text: string, secret: string = fixture.secret): ReturnType<typeof verifyIncomingSignature> {
  return verifyIncomingSignature(parseRawJson(Buffer.from(text, 'utf8')), secret);
}

describe('verifyIncomingSignature against the reference fixtures', () => {
  for (const entry of fixture.cases) {
    for (const { spelling, text } of entry.wires) {
      it(`${entry.name} (${spelling}): ${entry.valid ? 'accepts' : 'rejects'} the exact bytes`, () => {
        const root = parseRawJson(Buffer.from(text, 'utf8'));
        const verdict = verifyIncomingSignature(root, fixture.secret);
        assert.equal(verdict.valid, entry.valid, JSON.stringify(verdict));
        if (entry.canonical !== undefined) assert.equal(canonicalSignedText(root), entry.canonical);
      });
    }
  }

  it('reads both wire spellings of a case as the same message, the one in the case', () => {
    for (const entry of fixture.cases) {
      const [compact, pythonDefault] = entry.wires.map(({ text }) => parseRawJson(Buffer.from(text, 'utf8')));
      assert.ok(compact && pythonDefault);
      assert.equal(serializePythonCompact(pythonDefault), serializePythonCompact(compact), entry.name);
      assert.deepEqual(toPlainValue(compact), toPlainValue(entry.message), entry.name);
    }
  });

  it('signs with the fixture timestamp, as Python str() prints it', () => {
    const expected = timestampText(fixture.timestamp);
    assert.ok(expected !== undefined);
    for (const entry of fixture.cases) {
      const headers = getMember(parseRawJson(entry.wires[0]?.text ?? ''), 'headers');
      const timestamp = getMember(headers, TIMESTAMP_HEADER);
      if (timestamp !== undefined) assert.equal(timestampText(timestamp), expected, entry.name);
    }
  });

  it('computes the signature each valid case carries from its canonical text', () => {
    const timestamp = timestampText(fixture.timestamp) ?? '';
    for (const entry of fixture.cases.filter((candidate) => candidate.valid)) {
      const headers = getMember(parseRawJson(entry.wires[0]?.text ?? ''), 'headers');
      const signature = stringAt(getMember(headers, SIGNATURE_HEADER), `${entry.name} signature`);
      assert.equal(computePortSignature(fixture.secret, timestamp, entry.canonical ?? ''), signature, entry.name);
    }
  });

  it('says why a message is rejected', () => {
    assert.deepEqual(verify(caseNamed('tampered').wires[0]?.text ?? ''), { valid: false, reason: 'mismatch' });
    assert.deepEqual(verify(caseNamed('wrong-secret').wires[0]?.text ?? ''), { valid: false, reason: 'mismatch' });
    assert.deepEqual(verify(caseNamed('missing-signature').wires[0]?.text ?? ''), { valid: false, reason: 'missing-signature' });
    assert.deepEqual(verify(caseNamed('basic-run').wires[0]?.text ?? '', 'another-secret'), { valid: false, reason: 'mismatch' });
  });

  it('finds no headers on an unsigned change-log message', () => {
    assert.deepEqual(verifyIncomingSignature(fixture.changelogExample, fixture.secret), { valid: false, reason: 'missing-headers' });
  });

  it('removes the whole headers key for a GitLab invocation', () => {
    const gitlab = parseRawJson(caseNamed('gitlab').wires[0]?.text ?? '');
    assert.equal(getPath(gitlab, ['payload', 'action', 'invocationMethod', 'type'])?.type, 'string');
    assert.ok(!canonicalSignedText(gitlab).includes('"headers"'));
  });

  it('does not change the tree it checks', () => {
    const text = caseNamed('basic-run').wires[0]?.text ?? '';
    const root = parseRawJson(text);
    const before = serializePythonCompact(root);
    assert.equal(verifyIncomingSignature(root, fixture.secret).valid, true);
    assert.equal(serializePythonCompact(root), before);
    assert.equal(before, text);
  });
});

describe('verifyIncomingSignature on malformed headers', () => {
  const secret = 'test-secret';
  const body = '"context":{"runId":"r_1"},"payload":{"action":{"invocationMethod":{"type":"WEBHOOK"}}}';

  it('reports missing headers when there is no headers object', () => {
    for (const headers of ['', ',"headers":null', ',"headers":[]', ',"headers":"x"']) {
      assert.deepEqual(verify(`{${body}${headers}}`, secret), { valid: false, reason: 'missing-headers' });
    }
    assert.deepEqual(verify('[1,2]', secret), { valid: false, reason: 'missing-headers' });
  });

  it('reports a missing signature when it is absent or empty, as the reference tests it with `not`', () => {
    for (const signature of ['', `"${SIGNATURE_HEADER}":"",`, `"${SIGNATURE_HEADER}":null,`, `"${SIGNATURE_HEADER}":false,`]) {
      const text = `{${body},"headers":{${signature}"${TIMESTAMP_HEADER}":1713277889}}`;
      assert.deepEqual(verify(text, secret), { valid: false, reason: 'missing-signature' });
    }
  });

  it('reports a missing timestamp when it is absent, zero, empty or not a number', () => {
    for (const timestamp of ['', `,"${TIMESTAMP_HEADER}":0`, `,"${TIMESTAMP_HEADER}":0.0`, `,"${TIMESTAMP_HEADER}":""`, `,"${TIMESTAMP_HEADER}":null`, `,"${TIMESTAMP_HEADER}":[1]`]) {
      const text = `{${body},"headers":{"${SIGNATURE_HEADER}":"v1,abc"${timestamp}}}`;
      assert.deepEqual(verify(text, secret), { valid: false, reason: 'missing-timestamp' });
    }
  });

  it('reports a mismatch, without throwing, for signatures of another length or type', () => {
    for (const signature of ['"v1,short"', '"v1,' + 'A'.repeat(200) + '"', '"é"', '42', '["v1,abc"]']) {
      const text = `{${body},"headers":{"${SIGNATURE_HEADER}":${signature},"${TIMESTAMP_HEADER}":1713277889}}`;
      assert.deepEqual(verify(text, secret), { valid: false, reason: 'mismatch' });
    }
  });

  it('signs other headers too and keeps an emptied headers object', () => {
    const unsigned = `{${body},"headers":{"X-Other":"kept"}}`;
    const signature = computePortSignature(secret, '1713277889', unsigned);
    const text = `{${body},"headers":{"${SIGNATURE_HEADER}":"${signature}","X-Other":"kept","${TIMESTAMP_HEADER}":1713277889}}`;
    assert.deepEqual(verify(text, secret), { valid: true });
    assert.equal(canonicalSignedText(parseRawJson(`{"headers":{"${SIGNATURE_HEADER}":"s","${TIMESTAMP_HEADER}":1}}`)), '{"headers":{}}');
  });
});

describe('timestampText', () => {
  it('prints the timestamp as Python str() does', () => {
    const cases: [string, string | undefined][] = [
      ['1713277889', '1713277889'],
      ['1713277889.5', '1713277889.5'],
      ['1.7e9', '1700000000.0'],
      ['1e16', '1e+16'],
      ['"1713277889"', '1713277889'],
      ['NaN', 'nan'],
      ['-Infinity', '-inf'],
      ['0', undefined],
      ['-0.0', undefined],
      ['true', undefined],
    ];
    for (const [json, expected] of cases) assert.equal(timestampText(parseRawJson(json)), expected, json);
  });
});

describe('computePortSignature', () => {
  it('is v1, and the base64 HMAC-SHA256 of `<timestamp>.<payload>` in UTF-8', () => {
    const signature = computePortSignature('secret', '1', '{"a":"é"}');
    assert.match(signature, /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(signature, computePortSignature('secret', '2', '{"a":"é"}'));
    assert.notEqual(signature, computePortSignature('secret', '1', '{"a":"e"}'));
  });
});

describe('signedMessageBytes (test/support)', () => {
  const timestamp = 1713277889;

  it('reproduces the fixture bytes for every valid case a plain object can express', () => {
    let reproduced = 0;
    for (const entry of fixture.cases.filter((candidate) => candidate.valid)) {
      const compact = entry.wires[0]?.text ?? '';
      const plain = toPlainValue(parseRawJson(compact)) as Record<string, unknown>;
      // Plain objects reorder integer-like keys and round big integers; skip those cases.
      if (serializePythonCompact(fromPlainValue(plain)) !== compact) continue;
      assert.equal(signedMessageBytes(plain, fixture.secret, timestamp), compact, entry.name);
      reproduced++;
    }
    assert.ok(reproduced >= 3, `only ${reproduced} cases reproduced`);
  });

  it('produces messages the verifier accepts, GitLab ones too', () => {
    for (const entry of fixture.cases.filter((candidate) => candidate.valid)) {
      const plain = toPlainValue(entry.message) as Record<string, unknown>;
      const text = signedMessageBytes(plain, fixture.secret);
      assert.deepEqual(verify(text), { valid: true }, entry.name);
      assert.deepEqual(verify(text, 'another-secret'), { valid: false, reason: 'mismatch' }, entry.name);
    }
  });

  it('adds headers when missing and keeps other headers', () => {
    const message = { context: { runId: 'r_1' }, payload: { action: { invocationMethod: { type: 'WEBHOOK', agent: true } } } };
    const added = parseRawJson(signedMessageBytes(message, 'secret', timestamp));
    assert.ok(added.type === 'object');
    assert.deepEqual(added.entries.map(([key]) => key), ['context', 'payload', 'headers']);
    const addedHeaders = getMember(added, 'headers');
    assert.deepEqual(addedHeaders?.type === 'object' && addedHeaders.entries.map(([key]) => key), [SIGNATURE_HEADER, TIMESTAMP_HEADER]);
    assert.equal(verifyIncomingSignature(added, 'secret').valid, true);

    const withOther = parseRawJson(signedMessageBytes({ ...message, headers: { 'X-Other': 'kept', [SIGNATURE_HEADER]: 'stale' } }, 'secret', timestamp));
    const headers = getMember(withOther, 'headers');
    assert.equal(headers?.type === 'object' && headers.entries.map(([key]) => key).join(), `X-Other,${SIGNATURE_HEADER},${TIMESTAMP_HEADER}`);
    assert.equal(timestampText(getMember(headers, TIMESTAMP_HEADER)), String(timestamp));
    assert.equal(verifyIncomingSignature(withOther, 'secret').valid, true);
  });
});
