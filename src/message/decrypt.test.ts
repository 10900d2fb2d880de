import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DECRYPTED_VALUE_PLACEHOLDER, decodePythonBase64, decryptFields, decryptionKey, withoutDecryptedValues } from './decrypt.js';
import type { DecryptionWarning } from './decrypt.js';

const FIXTURE_URL = new URL('../../test/fixtures/decrypt-fields.json', import.meta.url);

// The bad vectors carry no path of their own.
const BAD_VECTOR_PATH = 'payload.properties.secret';

interface GoodVector {
  path: string;
  plaintext: string;
  encrypted: string;
}

interface BadVector {
  name: string;
  encrypted: string;
}

type Container = Record<string, unknown> | unknown[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(item: unknown, field: string, what: string): string {
  assert.ok(isRecord(item), `fixture: ${what} should be an object`);
  const value = item[field];
  assert.equal(typeof value, 'string', `fixture: ${what}.${field} should be a string`);
  return String(value);
}

function readFixture(): { secret: string; good: GoodVector[]; bad: BadVector[] } {
  const root: unknown = JSON.parse(readFileSync(FIXTURE_URL, 'utf8'));
  assert.ok(isRecord(root), 'fixture: the root should be an object');
  const { cases, bad } = root;
  assert.ok(Array.isArray(cases) && cases.length > 0, 'fixture: cases should be a non-empty array');
  assert.ok(Array.isArray(bad) && bad.length > 0, 'fixture: bad should be a non-empty array');
  return {
    secret: stringField(root, 'secret', 'root'),
    good: cases.map((item: unknown, index) => ({
      path: stringField(item, 'path', `cases[${index}]`),
      plaintext: stringField(item, 'plaintext', `cases[${index}]`),
      encrypted: stringField(item, 'encrypted', `cases[${index}]`),
    })),
    bad: bad.map((item: unknown, index) => ({
      name: stringField(item, 'name', `bad[${index}]`),
      encrypted: stringField(item, 'encrypted', `bad[${index}]`),
    })),
  };
}

const fixture = readFixture();
const key = decryptionKey(fixture.secret);
assert.ok(key !== undefined, 'fixture: the secret should be at least 32 bytes');
const KEY = key;

function isIndex(segment: string | undefined): boolean {
  return segment !== undefined && /^(?:0|[1-9][0-9]*)$/.test(segment);
}

function childOf(container: Container, segment: string): unknown {
  if (Array.isArray(container)) return container[Number(segment)];
  return Object.hasOwn(container, segment) ? container[segment] : undefined;
}

function setChild(container: Container, segment: string, value: unknown): void {
  if (Array.isArray(container)) {
    const index = Number(segment);
    while (container.length < index) container.push(null);
    container[index] = value;
  } else {
    Object.defineProperty(container, segment, { value, writable: true, enumerable: true, configurable: true });
  }
}

/** Puts `value` at `path` in `root`, creating objects, or arrays where the next segment is an index. */
function setAt(root: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const segments = path.split('.');
  let current: Container = root;
  for (const [depth, segment] of segments.entries()) {
    if (depth === segments.length - 1) {
      setChild(current, segment, value);
      break;
    }
    let next = childOf(current, segment);
    if (!Array.isArray(next) && !isRecord(next)) {
      next = isIndex(segments[depth + 1]) ? [] : {};
      setChild(current, segment, next);
    }
    assert.ok(Array.isArray(next) || isRecord(next));
    current = next;
  }
  return root;
}

function valueAt(root: unknown, path: string): unknown {
  let current = root;
  for (const segment of path.split('.')) {
    if (!Array.isArray(current) && !isRecord(current)) return undefined;
    current = childOf(current, segment);
  }
  return current;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function run(message: Record<string, unknown>, paths: readonly string[]): { result: Record<string, unknown>; warnings: DecryptionWarning[] } {
  const warnings: DecryptionWarning[] = [];
  const result = decryptFields(message, paths, KEY, (warning) => warnings.push(warning));
  return { result, warnings };
}

/** Port's format, for values the fixture does not have: base64(iv ‖ ciphertext ‖ tag). */
function encrypt(plaintext: Buffer): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-gcm', KEY, iv, { authTagLength: 16 });
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64');
}

function assertLeaksNothing(warnings: readonly DecryptionWarning[], encrypted: string): void {
  const text = JSON.stringify(warnings);
  assert.ok(!text.includes(encrypted), 'a warning holds the encrypted value');
  for (const { plaintext } of fixture.good) assert.ok(!text.includes(plaintext), 'a warning holds a decrypted value');
}

const [FIRST_GOOD] = fixture.good;
assert.ok(FIRST_GOOD !== undefined);

describe('decryptFields with the fixture vectors', () => {
  for (const vector of fixture.good) {
    it(`decrypts ${vector.path} to its plaintext`, () => {
      const { result, warnings } = run(setAt({}, vector.path, vector.encrypted), [vector.path]);
      assert.deepEqual(warnings, []);
      assert.equal(valueAt(result, vector.path), vector.plaintext);
    });
  }

  const expectedReasons = new Map([
    ['tampered', /authentication failed/],
    ['too-short', /shorter than the 32 bytes/],
    ['not-base64', /not base64/],
  ]);
  for (const vector of fixture.bad) {
    it(`leaves the ${vector.name} value unchanged with one warning that does not show it`, () => {
      const message = setAt({ other: 1 }, BAD_VECTOR_PATH, vector.encrypted);
      const { result, warnings } = run(message, [BAD_VECTOR_PATH]);
      assert.deepEqual(result, message);
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.path, BAD_VECTOR_PATH);
      assert.ok((warnings[0]?.reason ?? '').length > 0);
      const expected = expectedReasons.get(vector.name);
      if (expected !== undefined) assert.match(warnings[0]?.reason ?? '', expected);
      assertLeaksNothing(warnings, vector.encrypted);
    });
  }
});

describe('decryptFields paths', () => {
  it('decrypts several paths at once and warns only for the failing one', () => {
    const message: Record<string, unknown> = {};
    for (const vector of fixture.good) setAt(message, vector.path, vector.encrypted);
    const [badVector] = fixture.bad;
    assert.ok(badVector !== undefined);
    setAt(message, BAD_VECTOR_PATH, badVector.encrypted);
    const paths = [...fixture.good.map(({ path }) => path), BAD_VECTOR_PATH];
    const { result, warnings } = run(message, paths);
    for (const vector of fixture.good) assert.equal(valueAt(result, vector.path), vector.plaintext);
    assert.equal(valueAt(result, BAD_VECTOR_PATH), badVector.encrypted);
    assert.deepEqual(warnings.map(({ path }) => path), [BAD_VECTOR_PATH]);
  });

  it('decrypts a path listed twice once, without a warning', () => {
    const message = setAt({}, FIRST_GOOD.path, FIRST_GOOD.encrypted);
    const { result, warnings } = run(message, [FIRST_GOOD.path, FIRST_GOOD.path]);
    assert.equal(valueAt(result, FIRST_GOOD.path), FIRST_GOOD.plaintext);
    assert.deepEqual(warnings, []);
  });

  it('warns "path not found" for a missing key, a missing parent and a walk into a string', () => {
    const message = setAt({}, 'payload.properties.secret', FIRST_GOOD.encrypted);
    const paths = ['payload.properties.missing', 'payload.nothing.deeper', 'payload.properties.secret.length', ''];
    const { result, warnings } = run(message, paths);
    assert.deepEqual(result, message);
    assert.deepEqual(warnings, paths.map((path) => ({ path, reason: 'path not found' })));
  });

  it('warns for values that are not strings and leaves them as they were', () => {
    const message = { payload: { number: 42, nothing: null, object: { a: 'b' }, list: ['x'], flag: true } };
    const paths = ['payload.number', 'payload.nothing', 'payload.object', 'payload.list', 'payload.flag'];
    const { result, warnings } = run(message, paths);
    assert.deepEqual(result, message);
    assert.deepEqual(warnings, paths.map((path) => ({ path, reason: 'value is not a string' })));
  });

  it('treats a list index out of range or not in canonical decimal as a missing path', () => {
    const message = { payload: { items: [{ token: FIRST_GOOD.encrypted }, { token: FIRST_GOOD.encrypted }] } };
    const paths = ['payload.items.2.token', 'payload.items.01.token', 'payload.items.-1.token', 'payload.items.length'];
    const { result, warnings } = run(message, paths);
    assert.deepEqual(result, message);
    assert.deepEqual(warnings, paths.map((path) => ({ path, reason: 'path not found' })));
  });

  it('reads a numeric segment on an object as a key', () => {
    const message = { payload: { 0: { token: FIRST_GOOD.encrypted } } };
    const { result, warnings } = run(message, ['payload.0.token']);
    assert.deepEqual(warnings, []);
    assert.deepEqual(result, { payload: { 0: { token: FIRST_GOOD.plaintext } } });
  });

  it('decrypts list items and keeps the other items', () => {
    const message = { payload: { items: ['keep', FIRST_GOOD.encrypted, 3] } };
    const { result } = run(message, ['payload.items.1']);
    assert.deepEqual(result, { payload: { items: ['keep', FIRST_GOOD.plaintext, 3] } });
  });
});

describe('decryptFields against hostile paths', () => {
  const hostilePaths = [
    '__proto__.polluted',
    'payload.__proto__.polluted',
    'payload.constructor.prototype.polluted',
    'constructor.name',
    'payload.toString',
    'payload.items.constructor.name',
  ];

  it('never walks into inherited properties', () => {
    const message = { payload: { items: ['a'], secret: FIRST_GOOD.encrypted } };
    const { result, warnings } = run(message, hostilePaths);
    assert.deepEqual(result, message);
    assert.deepEqual(warnings, hostilePaths.map((path) => ({ path, reason: 'path not found' })));
    assert.equal(Object.getPrototypeOf(result.payload), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('decrypts an own "__proto__" key as an ordinary field without changing any prototype', () => {
    // An object literal's __proto__ sets the prototype; JSON.parse makes it an own key, as in a message.
    const parsed: unknown = JSON.parse(`{"payload":{"__proto__":{"secret":${JSON.stringify(FIRST_GOOD.encrypted)}}}}`);
    assert.ok(isRecord(parsed));
    const { result, warnings } = run(parsed, ['payload.__proto__.secret']);
    assert.deepEqual(warnings, []);
    const payload = result.payload;
    assert.ok(isRecord(payload));
    assert.equal(Object.getPrototypeOf(payload), Object.prototype);
    assert.ok(Object.hasOwn(payload, '__proto__'));
    assert.equal(valueAt(result, 'payload.__proto__.secret'), FIRST_GOOD.plaintext);
    assert.equal(({} as Record<string, unknown>).secret, undefined);
  });

  it('decrypts own "constructor" and "prototype" keys as ordinary fields', () => {
    const message = { payload: { constructor: { prototype: FIRST_GOOD.encrypted } } };
    const { result, warnings } = run(message, ['payload.constructor.prototype']);
    assert.deepEqual(warnings, []);
    assert.equal(valueAt(result, 'payload.constructor.prototype'), FIRST_GOOD.plaintext);
  });
});

describe('decryptFields copying', () => {
  it('does not modify the input and copies only along the changed paths', () => {
    const message = deepFreeze(setAt({ untouched: { deep: ['x'] } }, 'payload.items.1.token', FIRST_GOOD.encrypted));
    const snapshot = structuredClone(message);
    setAt(snapshot, 'payload.items.1.token', FIRST_GOOD.encrypted);
    const { result } = run(message, ['payload.items.1.token', 'payload.missing']);
    assert.deepEqual(message, snapshot);
    assert.notEqual(result, message);
    assert.equal(result.untouched, message.untouched);
    assert.notEqual(result.payload, message.payload);
    assert.notEqual(valueAt(result, 'payload.items'), valueAt(message, 'payload.items'));
    assert.equal(valueAt(result, 'payload.items.0'), valueAt(message, 'payload.items.0'));
    assert.equal(valueAt(result, 'payload.items.1.token'), FIRST_GOOD.plaintext);
    assert.ok(Array.isArray(valueAt(result, 'payload.items')));
  });

  it('returns a new root even when nothing changes', () => {
    const message = { payload: { a: 1 } };
    const { result } = run(message, []);
    assert.notEqual(result, message);
    assert.deepEqual(result, message);
    assert.equal(result.payload, message.payload);
  });

  it('copies an object the input holds in two places only where a path changes it', () => {
    const shared = { secret: FIRST_GOOD.encrypted };
    const message = { a: shared, b: shared };
    const { result } = run(message, ['a.secret']);
    assert.equal(valueAt(result, 'a.secret'), FIRST_GOOD.plaintext);
    assert.equal(result.b, shared);
    assert.equal(shared.secret, FIRST_GOOD.encrypted);
  });

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => decryptFields({}, [], Buffer.alloc(31), () => undefined), TypeError);
  });
});

describe('decryptFields base64 leniency (as Python base64.b64decode)', () => {
  const withPadding = fixture.good.find(({ encrypted }) => encrypted.endsWith('='));
  const withSlashOrPlus = fixture.good.find(({ encrypted }) => /[+/]/.test(encrypted));

  it('decrypts a value with whitespace and line breaks', () => {
    const wrapped = ` ${FIRST_GOOD.encrypted.replace(/(.{8})/g, '$1\n').replace(/(.{3})/, '$1 \t')}\r\n`;
    const { result, warnings } = run({ value: wrapped }, ['value']);
    assert.deepEqual(warnings, []);
    assert.equal(result.value, FIRST_GOOD.plaintext);
  });

  it('ignores whatever follows the padding', () => {
    assert.ok(withPadding !== undefined, 'fixture: a padded good vector');
    const { result, warnings } = run({ value: `${withPadding.encrypted}QUJD` }, ['value']);
    assert.deepEqual(warnings, []);
    assert.equal(result.value, withPadding.plaintext);
  });

  it('refuses a value whose padding is missing', () => {
    assert.ok(withPadding !== undefined, 'fixture: a padded good vector');
    const unpadded = withPadding.encrypted.replace(/=+$/, '');
    const { result, warnings } = run({ value: unpadded }, ['value']);
    assert.equal(result.value, unpadded);
    assert.deepEqual(warnings, [{ path: 'value', reason: 'not base64: incorrect padding' }]);
  });

  it('does not translate the url-safe alphabet', () => {
    assert.ok(withSlashOrPlus !== undefined, 'fixture: a good vector with + or /');
    const urlSafe = withSlashOrPlus.encrypted.replaceAll('+', '-').replaceAll('/', '_');
    const { result, warnings } = run({ value: urlSafe }, ['value']);
    assert.equal(result.value, urlSafe);
    assert.equal(warnings.length, 1);
    assertLeaksNothing(warnings, urlSafe);
  });

  it('refuses a value with a non-ASCII character', () => {
    const value = `${FIRST_GOOD.encrypted.slice(0, 4)}é${FIRST_GOOD.encrypted.slice(4)}`;
    const { warnings } = run({ value }, ['value']);
    assert.deepEqual(warnings, [{ path: 'value', reason: 'not base64: contains a non-ASCII character' }]);
  });
});

describe('decodePythonBase64', () => {
  // Outcomes of base64.b64decode on CPython 3.11, the official agent's runtime.
  const decodes: [string, string][] = [
    ['QUJD', 'ABC'],
    ['QUI=', 'AB'],
    ['QQ==', 'A'],
    ['QQ==QUJD', 'A'],
    ['QUI=QUJD', 'AB'],
    ['QU=I=', 'AB'],
    ['=QUJD', 'ABC'],
    ['Q U\nJ D', 'ABC'],
    ['QUJ-D', 'ABC'],
    ['QUJ_D', 'ABC'],
    ['Q\u0000UJD', 'ABC'],
    ['QUJD====', 'ABC'],
    ['QUJD=', 'ABC'],
    ['QQ=x=', 'A\u000c'],
    ['QQ=QQ==', 'A\u0004\u0010'],
    ['', ''],
    ['====', ''],
  ];
  for (const [input, expected] of decodes) {
    it(`decodes ${JSON.stringify(input)}`, () => {
      const decoded = decodePythonBase64(input);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.bytes, Buffer.from(expected, 'latin1'));
    });
  }

  const refuses: [string, string][] = [
    ['QUI', 'incorrect padding'],
    ['QQ', 'incorrect padding'],
    ['QQ=', 'incorrect padding'],
    ['QUJDQQ=x', 'incorrect padding'],
    ['Q', 'one data character more than a multiple of 4'],
    ['Q===', 'one data character more than a multiple of 4'],
    ['Q=QUJD', 'one data character more than a multiple of 4'],
    ['QUJDQ=', 'one data character more than a multiple of 4'],
    ['QUJé', 'contains a non-ASCII character'],
  ];
  for (const [input, reason] of refuses) {
    it(`refuses ${JSON.stringify(input)}: ${reason}`, () => {
      assert.deepEqual(decodePythonBase64(input), { ok: false, reason });
    });
  }
});

describe('decryptFields plaintext', () => {
  it('keeps the original and warns when the plaintext is not UTF-8', () => {
    const encrypted = encrypt(Buffer.from([0x61, 0xff, 0x62]));
    const { result, warnings } = run({ value: encrypted }, ['value']);
    assert.equal(result.value, encrypted);
    assert.deepEqual(warnings, [{ path: 'value', reason: 'decrypted value is not valid UTF-8' }]);
  });

  it('keeps a leading byte order mark, as Python decode("utf-8") does', () => {
    const { result } = run({ value: encrypt(Buffer.from('\ufeffabc', 'utf8')) }, ['value']);
    assert.equal(result.value, '\ufeffabc');
  });

  it('decrypts an empty plaintext', () => {
    const { result, warnings } = run({ value: encrypt(Buffer.alloc(0)) }, ['value']);
    assert.deepEqual(warnings, []);
    assert.equal(result.value, '');
  });
});

describe('decryptionKey', () => {
  it('is the first 32 bytes of the secret', () => {
    assert.deepEqual(decryptionKey(fixture.secret), Buffer.from(fixture.secret, 'utf8').subarray(0, 32));
  });

  it('is undefined for a secret shorter than 32 bytes', () => {
    assert.equal(decryptionKey('a'.repeat(31)), undefined);
    assert.equal(decryptionKey(''), undefined);
  });

  it('counts UTF-8 bytes, not characters', () => {
    assert.equal(decryptionKey(`${'é'.repeat(15)}a`), undefined);
    assert.deepEqual(decryptionKey('é'.repeat(16)), Buffer.from('é'.repeat(16), 'utf8'));
    assert.deepEqual(decryptionKey('ü'.repeat(20)), Buffer.from('ü'.repeat(16), 'utf8'));
  });

  it('cuts inside a multi-byte character at byte 32', () => {
    const keyBytes = decryptionKey(`${'a'.repeat(31)}é`);
    assert.deepEqual(keyBytes, Buffer.concat([Buffer.from('a'.repeat(31)), Buffer.from([0xc3])]));
  });
});

describe('keeping decrypted values out of logs and summaries', () => {
  it('tells the caller each plaintext it decrypted, and nothing for a value it could not decrypt', () => {
    const [bad] = fixture.bad;
    assert.ok(bad);
    let message: Record<string, unknown> = setAt({}, BAD_VECTOR_PATH, bad.encrypted);
    for (const vector of fixture.good) message = setAt(message, vector.path, vector.encrypted);
    const heard: string[] = [];
    decryptFields(message, [...fixture.good.map((vector) => vector.path), BAD_VECTOR_PATH], KEY, () => undefined, (plaintext) => heard.push(plaintext));
    assert.deepEqual(heard, fixture.good.map((vector) => vector.plaintext));
  });

  it('replaces a decrypted value quoted by an expression error, raw, JSON-escaped or percent-encoded', () => {
    const values = ['s3cr3t-P@ss', 'tok_ünïcødé_✓', 'with "quotes" \\ and / slash'];
    const cases: [string, string][] = [
      ['Unable to cast value to a number: "s3cr3t-P@ss"', `Unable to cast value to a number: "${DECRYPTED_VALUE_PLACEHOLDER}"`],
      [`failed on ${JSON.stringify(values[2])}`, `failed on "${DECRYPTED_VALUE_PLACEHOLDER}"`],
      ['POST https://hooks.internal/tok_%C3%BCn%C3%AFc%C3%B8d%C3%A9_%E2%9C%93/x', `POST https://hooks.internal/${DECRYPTED_VALUE_PLACEHOLDER}/x`],
      ['s3cr3t-P@ss and tok_ünïcødé_✓ twice: s3cr3t-P@ss', `${DECRYPTED_VALUE_PLACEHOLDER} and ${DECRYPTED_VALUE_PLACEHOLDER} twice: ${DECRYPTED_VALUE_PLACEHOLDER}`],
      ['nothing secret here', 'nothing secret here'],
    ];
    for (const [text, expected] of cases) assert.equal(withoutDecryptedValues(text, values), expected);
  });

  it('ignores an empty value and copes with a lone surrogate', () => {
    assert.equal(withoutDecryptedValues('abc', ['']), 'abc');
    assert.equal(withoutDecryptedValues('a\ud800b', ['\ud800']), `a${DECRYPTED_VALUE_PLACEHOLDER}b`);
    assert.equal(withoutDecryptedValues('abc', []), 'abc');
  });
});
