/**
 * Issue 7: a fuzz test throws a few thousand generated messages — random bytes, truncated and
 * mutated real messages, random JSON trees with wrong types in the invocation method, huge numbers,
 * unicode, duplicate keys, deep nesting — at the message stage functions and at the whole handler
 * (real mappers in both dialects, a real service, the Port stand-in), and finds no crash: nothing
 * throws but the expected errors, the handler always resolves with an outcome, and no message takes
 * the "unexpected failure" path. The generator is seeded: FUZZ_SEED=<n> replays a failing run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { expressionEnvironment } from '../../src/config/load.js';
import { MessageError } from '../../src/errors.js';
import { compileMappings } from '../../src/mapping/compile.js';
import { createCompiler } from '../../src/mapping/dialects.js';
import type { DialectCompiler } from '../../src/mapping/dialects.js';
import { createMapper } from '../../src/mapping/render.js';
import { decryptionKey } from '../../src/message/decrypt.js';
import { classify, readInvocationMethod, recoverRunId, withoutSignatureHeaders } from '../../src/message/invocation.js';
import type { Message } from '../../src/message/invocation.js';
import { RawJsonSyntaxError, getMember, parseRawJson, serializePythonCompact, toPlainValue } from '../../src/message/raw-json.js';
import type { JsonEntry, JsonNode } from '../../src/message/raw-json.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, canonicalSignedText, computePortSignature, verifyIncomingSignature } from '../../src/message/signature.js';
import { createMessageHandler } from '../../src/pipeline/handle.js';
import { isPlainObject } from '../../src/shared/json-shape.js';
import type { HandleOutcome, SourceMessage, TopicRole } from '../../src/shared/source-message.js';
import { testDeliverer } from '../support/deliverer.js';
import { capturingLogger } from '../support/log-lines.js';
import { testReporter, untilReported } from '../support/reporter.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { refusedUrl, startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';

const SEED = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(process.env.FUZZ_SEED);
const STAGE_MESSAGES = 5000;
const HANDLER_MESSAGES = 3000;
const HANDLER_CONCURRENCY = 64;
/** A message the handler has not finished within this is a hang. */
const MESSAGE_DEADLINE_MS = 10_000;
const OUTCOMES: readonly HandleOutcome[] = ['delivered', 'failed', 'skipped', 'dropped'];

const DECRYPT_FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/decrypt-fields.json', import.meta.url), 'utf8')) as {
  secret: string;
  cases: { path: string; plaintext: string; encrypted: string }[];
  bad: { encrypted: string }[];
};
const OFFICIAL_JQ_DEFAULT = JSON.parse(readFileSync(new URL('../fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8')) as unknown[];
const BUILT_IN_DEFAULT = JSON.parse(readFileSync(new URL('../../config/default-mapping.json', import.meta.url), 'utf8')) as unknown[];

// ---------------------------------------------------------------------------------------------
// A seeded generator
// ---------------------------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (limit: number): number => Math.floor(next() * limit);
  return {
    next,
    int,
    chance: (probability: number): boolean => next() < probability,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
  };
}
type Random = ReturnType<typeof createRandom>;

const STRINGS = [
  '',
  'plain',
  'héllo wörld',
  '日本語',
  '😀 emoji',
  'lone \ud800 high',
  'lone \udc00 low',
  'line\u2028separator\u2029',
  'quote " backslash \\ slash /',
  'control \u0000\u0001\u001f\u007f',
  'tab\tnew\nline\r',
  '\\ud800 as text',
  'x'.repeat(3000),
  '{"looks": "like json"}',
  '<script>alert(1)</script>',
  "'; DROP TABLE runs; --",
  '__proto__',
  '%00%0d%0a',
];
const KEYS = ['a', 'b', '', ' ', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '10', '1', 'ключ', '😀', 'headers', 'runId', 'url', 'agent'];
const NUMBER_TEXTS = ['0', '-0', '1', '-1', '1.0', '0.1', '1e+16', '1E2', '1e-07', '12345678901234567890123456789', '-9007199254740993', '1e400', '-1e400', '5e-324', '1.7976931348623157e308', 'NaN', 'Infinity', '-Infinity', '123.456e-789'];
const NUMBERS = [0, -0, 1, -1, 0.5, 2 ** 53 + 2, 1e21, -1e300, 5e-324, Number.MAX_VALUE, Number.NaN, Infinity, -Infinity, 42];

function randomScalar(random: Random): unknown {
  switch (random.int(5)) {
    case 0:
      return random.pick(STRINGS);
    case 1:
      return random.pick(NUMBERS);
    case 2:
      return random.chance(0.5);
    case 3:
      return null;
    default:
      return `s${random.int(1000)}`;
  }
}

/** A plain JS value: what Port might send in a property, or a wrong type in a field. */
function randomValue(random: Random, depth = 0): unknown {
  const roll = random.int(10);
  if (depth > 4 || roll < 6) return randomScalar(random);
  if (roll < 8) return Array.from({ length: random.int(4) }, () => randomValue(random, depth + 1));
  const value: Record<string, unknown> = {};
  for (let index = random.int(4); index > 0; index--) {
    Object.defineProperty(value, random.pick(KEYS), { value: randomValue(random, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return value;
}

function randomStringText(random: Random): string {
  const pieces = ['a', 'é', '😀', '\\"', '\\\\', '\\/', '\\n', '\\u0000', '\\ud800', '\\udc00', '\\ud83d\\ude00', '\\u2028', ' ', 'runId', '\u2028'];
  let text = '"';
  for (let index = random.int(6); index > 0; index--) text += random.pick(pieces);
  return `${text}"`;
}

/** JSON text with what JSON.stringify never writes: repeated keys, NaN, long integers, escapes, odd whitespace. */
function randomJsonText(random: Random, depth = 0): string {
  const space = (): string => random.pick(['', '', ' ', '\n', '\t', '\r\n  ']);
  const roll = random.int(10);
  if (depth > 5 || roll < 4) {
    return random.pick([() => random.pick(NUMBER_TEXTS), () => randomStringText(random), () => random.pick(['true', 'false', 'null'])])();
  }
  if (roll < 6) {
    const items = Array.from({ length: random.int(4) }, () => `${space()}${randomJsonText(random, depth + 1)}${space()}`);
    return `[${items.join(',')}]`;
  }
  const keys = Array.from({ length: random.int(5) }, () => (random.chance(0.7) ? JSON.stringify(random.pick(KEYS)) : randomStringText(random)));
  // Repeated keys: the last value wins at the first position (SPEC §4).
  if (keys.length > 0 && random.chance(0.4)) keys.push(random.pick(keys));
  return `{${keys.map((key) => `${space()}${key}${space()}:${space()}${randomJsonText(random, depth + 1)}`).join(',')}}`;
}

interface Pools {
  urls: string[];
}

function randomRunId(random: Random): unknown {
  if (random.chance(0.75)) return `${random.chance(0.8) ? 'r' : 'wfnr'}_${random.int(1e9).toString(36)}`;
  return random.pick(['', 42, null, 'r_../../admin', `r_${'x'.repeat(300)}`, ['r_1'], undefined]);
}

function maybe(random: Random, usual: () => unknown, probability = 0.25): unknown {
  return random.chance(probability) ? randomValue(random) : usual();
}

/** An invocation message as Port sends it, with wrong types, odd URLs and odd headers mixed in. */
function randomInvocation(random: Random, pools: Pools): { message: Record<string, unknown>; role: TopicRole; runId: unknown } {
  const invocationMethod: Record<string, unknown> = {};
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) Object.defineProperty(invocationMethod, key, { value, enumerable: true, writable: true, configurable: true });
  };
  set('type', maybe(random, () => random.pick(['WEBHOOK', 'WEBHOOK', 'GITLAB', 'KAFKA', undefined]), 0.1));
  set('agent', random.chance(0.85) ? true : random.pick(['true', 1, false, null, undefined, {}]));
  set('url', maybe(random, () => random.pick(pools.urls), 0.15));
  set('method', maybe(random, () => random.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'FROBNICATE', 'get', ' post ', '', 'GET\r\nX: 1', 'CONNECT', undefined]), 0.15));
  set('synchronized', maybe(random, () => random.pick([true, false, undefined]), 0.15));
  if (random.chance(0.4)) {
    set(
      'headers',
      maybe(random, () => {
        const headers: Record<string, unknown> = {};
        for (let index = random.int(3); index >= 0; index--) {
          headers[random.pick(['X-Team', 'Authorization', 'Bad Name', 'X-A\r\nX-B', 'content-type', 'X-Port-Signature', ''])] = random.pick([
            'payments',
            'Bearer t0ken',
            'a\r\nInjected: 1',
            '日本',
            3,
            true,
            null,
            { nested: 1 },
            ['x'],
            '',
          ]);
        }
        return headers;
      }, 0.3),
    );
  }
  if (invocationMethod.type === 'GITLAB') {
    set('groupName', maybe(random, () => random.pick(['platform/infra', 'g', '', '../..'])));
    set('projectName', maybe(random, () => random.pick(['deployer', 'p', ''])));
    set('defaultRef', maybe(random, () => 'main'));
    set('omitPayload', maybe(random, () => random.chance(0.5)));
    set('omitUserInputs', maybe(random, () => random.chance(0.5)));
  }
  const properties: Record<string, unknown> = { version: '1.0.0' };
  for (let index = random.int(4); index > 0; index--) properties[random.pick(KEYS)] = randomValue(random);
  const identifier = random.chance(0.3) ? 'decrypt' : 'deploy';
  if (identifier === 'decrypt') {
    const vector = random.pick(DECRYPT_FIXTURE.cases);
    properties.secret = random.pick([vector.encrypted, random.pick(DECRYPT_FIXTURE.bad).encrypted, 'not base64 !!', '', 42, null, { x: 1 }, ['a']]);
    properties.items = random.pick([[{ token: vector.encrypted }], [], 'items', [[1]], null]);
  }
  const runId = randomRunId(random);
  const context: Record<string, unknown> = { blueprint: 'service' };
  if (runId !== undefined) context.runId = runId;
  if (random.chance(0.25)) {
    return {
      role: 'changelog',
      message: { action: 'Create', context, diff: { after: randomValue(random) }, changelogDestination: invocationMethod },
      runId,
    };
  }
  const message: Record<string, unknown> = {
    context: maybe(random, () => context, 0.05),
    payload: maybe(random, () => ({ action: { identifier, invocationMethod }, properties, entity: randomValue(random) }), 0.05),
  };
  if (random.chance(0.05)) message.headers = random.pick(['string', [1], null, 42]);
  return { role: 'runs', message, runId };
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The bytes Port would send for a parsed tree: signed over its canonical text, as support/signed-message.ts does for plain values. */
function signTree(root: JsonNode, secret: string): string | undefined {
  if (root.type !== 'object') return undefined;
  const existing = getMember(root, 'headers');
  const others = existing?.type === 'object' ? existing.entries.filter(([name]) => name !== SIGNATURE_HEADER && name !== TIMESTAMP_HEADER) : [];
  const withHeaders = (entries: readonly JsonEntry[]): JsonNode => {
    const headers: JsonNode = { type: 'object', entries };
    const hasHeaders = root.entries.some(([key]) => key === 'headers');
    return { type: 'object', entries: hasHeaders ? root.entries.map((entry): JsonEntry => (entry[0] === 'headers' ? ['headers', headers] : entry)) : [...root.entries, ['headers', headers]] };
  };
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = computePortSignature(secret, timestamp, canonicalSignedText(withHeaders(others)));
  const text = serializePythonCompact(
    withHeaders([...others, [SIGNATURE_HEADER, { type: 'string', value: signature }], [TIMESTAMP_HEADER, { type: 'number', raw: timestamp, value: Number(timestamp), isInteger: true }]]),
  );
  // UTF-8 cannot carry a lone surrogate: on the wire it is an escape (the other spelling that verifies).
  return text.replace(LONE_SURROGATE, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`);
}

function signedPlain(message: Record<string, unknown>, secret: string): string {
  return signTree(parseRawJson(JSON.stringify(message)), secret) as string;
}

interface Generated {
  kind: string;
  bytes: Buffer;
  role: TopicRole;
  /** Signed by us: the signature check must pass. */
  isSigned: boolean;
  /** The run id the message was built with, when it has the form recoverRunId looks for (`r_…`, `wfnr_…`). */
  runId?: string;
  /** A random edit hit the run id's entry itself: what a reader finds there is anyone's guess. */
  isRunIdEdited?: boolean;
}

/**
 * The ids randomRunId makes in its usual branch (a prefix and up to 6 base-36 digits): the ones a
 * reader of broken bytes can still find. Its odd ones (empty, not a string, `r_../../admin`, 302
 * characters long) must never be recovered.
 */
const WELL_FORMED_RUN_ID = /^(?:r|wfnr)_[a-z0-9]{1,6}$/;

function wellFormedRunId(runId: unknown): string | undefined {
  return typeof runId === 'string' && WELL_FORMED_RUN_ID.test(runId) ? runId : undefined;
}

/** The run id's entry as both serialisers used here write it (for the ASCII ids randomRunId makes). */
function runIdEntry(runId: unknown): string {
  return `"runId":${JSON.stringify(runId)}`;
}

function deepNesting(random: Random): string {
  const levels = random.pick([200, 255, 300, 999, 1000, 1001, 5000, 100_000]);
  const open = random.pick(['[', '{"a":']);
  const close = open === '[' ? ']' : '}';
  return open.repeat(levels) + random.pick(['1', '"x"', '[]', '']) + (random.chance(0.7) ? close.repeat(levels) : '');
}

function generate(random: Random, pools: Pools, secret: string): Generated {
  const kind = random.pick(['bytes', 'text', 'truncated', 'mutated', 'deep', 'deep-in-run', 'invocation', 'invocation', 'invocation', 'invocation', 'tree-in-run']);
  const valid = (): { text: string; role: TopicRole; runId: unknown } => {
    const { message, role, runId } = randomInvocation(random, pools);
    return { text: role === 'runs' ? signedPlain(message, secret) : JSON.stringify(message), role, runId };
  };
  switch (kind) {
    case 'bytes': {
      const bytes = Buffer.from(Array.from({ length: random.int(300) }, () => random.int(256)));
      if (random.chance(0.3)) bytes[0] = 0x7b;
      return { kind, bytes, role: random.pick(['runs', 'changelog']), isSigned: false };
    }
    case 'text':
      return { kind, bytes: Buffer.from(randomJsonText(random), 'utf8'), role: random.pick(['runs', 'changelog']), isSigned: false };
    case 'truncated': {
      const { text, role, runId } = valid();
      const bytes = Buffer.from(text, 'utf8');
      return { kind, bytes: bytes.subarray(0, random.int(bytes.length)), role, isSigned: false, runId: wellFormedRunId(runId) };
    }
    case 'mutated': {
      const { text, role, runId } = valid();
      const bytes = Buffer.from(text, 'utf8');
      // Whatever the id's form: an edit inside an odd one can leave a well-formed one behind.
      const entry = runId === undefined ? undefined : runIdEntry(runId);
      const entryStart = entry === undefined ? -1 : bytes.indexOf(entry);
      const entryEnd = entry === undefined ? -1 : entryStart + entry.length;
      let isRunIdEdited = false;
      for (let edits = 1 + random.int(4); edits > 0; edits--) {
        const at = random.int(bytes.length);
        if (entryStart >= 0 && at >= entryStart && at < entryEnd) isRunIdEdited = true;
        bytes[at] = random.pick([random.int(256), 0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0xff, 0xc3]);
      }
      return { kind, bytes, role, isSigned: false, runId: wellFormedRunId(runId), isRunIdEdited };
    }
    case 'deep':
      return { kind, bytes: Buffer.from(deepNesting(random), 'utf8'), role: random.pick(['runs', 'changelog']), isSigned: false };
    case 'deep-in-run': {
      // A run whose property is nested deeply but within what the parser reads: it reaches the mappers.
      const { message, runId } = randomInvocation(random, pools);
      const levels = random.pick([100, 126, 127, 200, 252, 253, 254, 500, 990]);
      let deep: unknown = 'leaf';
      for (let level = 0; level < levels; level++) deep = random.chance(0.5) ? [deep] : { d: deep };
      const payload = message.payload;
      if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) (payload as Record<string, unknown>).deep = deep;
      return { kind, bytes: Buffer.from(signedPlain(message, secret), 'utf8'), role: 'runs', isSigned: true, runId: wellFormedRunId(runId) };
    }
    case 'tree-in-run': {
      // Duplicate keys, NaN, long integers and escapes inside a signed run message.
      const { message, runId } = randomInvocation(random, pools);
      const base = JSON.stringify(message);
      const text = base.startsWith('{"') ? `{"extra":${randomJsonText(random)},${base.slice(1)}` : base;
      let root: JsonNode;
      try {
        root = parseRawJson(text);
      } catch {
        return { kind, bytes: Buffer.from(text, 'utf8'), role: 'runs', isSigned: false, runId: wellFormedRunId(runId) };
      }
      const signed = signTree(root, secret);
      return { kind, bytes: Buffer.from(signed ?? text, 'utf8'), role: 'runs', isSigned: signed !== undefined, runId: wellFormedRunId(runId) };
    }
    default: {
      const { message, role, runId } = randomInvocation(random, pools);
      const isSigned = role === 'runs' && random.chance(0.85);
      return { kind, bytes: Buffer.from(isSigned ? signedPlain(message, secret) : JSON.stringify(message), 'utf8'), role, isSigned, runId: wellFormedRunId(runId) };
    }
  }
}

/** What an assertion names so the failure can be replayed. */
function replay(index: number, generated: Generated): string {
  return `FUZZ_SEED=${SEED}, message #${index} (${generated.kind}, ${generated.role}): ${JSON.stringify(generated.bytes.toString('utf8').slice(0, 300))}`;
}

// ---------------------------------------------------------------------------------------------
// The stage functions
// ---------------------------------------------------------------------------------------------

function expectOnly<T>(action: () => T, expected: new (...args: never[]) => Error, where: string): T | undefined {
  try {
    return action();
  } catch (error) {
    assert.ok(error instanceof expected, `${where}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} instead of a ${expected.name}`);
    return undefined;
  }
}

/**
 * SPEC §4/§5: the message the mapping sees is the message as it came, less Port's signature headers
 * (less its whole `headers` object for GitLab); every other field is the message's own value.
 */
function assertSentWithoutSignature(message: Message, body: Message, invocationType: string | undefined, where: string): void {
  const headers = message.headers;
  const isDroppingHeaders = isPlainObject(headers) && invocationType === 'GITLAB';
  assert.deepEqual(Object.keys(body), Object.keys(message).filter((key) => !isDroppingHeaders || key !== 'headers'), `${where}: the body's fields`);
  for (const key of Object.keys(message)) if (key !== 'headers') assert.equal(body[key], message[key], `${where}: body field ${JSON.stringify(key)} kept`);
  if (!isPlainObject(headers)) {
    assert.equal(body.headers, headers, `${where}: headers that are not an object are kept as they were`);
    return;
  }
  if (isDroppingHeaders) return;
  const sent = body.headers;
  assert.ok(isPlainObject(sent), `${where}: the headers object is kept`);
  const kept = Object.keys(headers).filter((name) => name !== SIGNATURE_HEADER && name !== TIMESTAMP_HEADER);
  assert.deepEqual(Object.keys(sent), kept, `${where}: only the signature headers are left out`);
  for (const name of kept) assert.equal(sent[name], headers[name], `${where}: header ${JSON.stringify(name)} kept`);
}

function runStages(generated: Generated, secret: string, where: string): void {
  const root = expectOnly(() => parseRawJson(generated.bytes), RawJsonSyntaxError, `${where} parseRawJson`);
  if (root === undefined) {
    if (!generated.isRunIdEdited) {
      // Bytes that do not parse still name their run when its entry came through whole, and only then.
      const text = generated.bytes.toString('utf8');
      const expected = generated.runId !== undefined && text.includes(runIdEntry(generated.runId)) ? generated.runId : undefined;
      assert.equal(recoverRunId(text), expected, `${where}: the run id recovered from bytes that do not parse`);
    }
    return;
  }
  const compact = serializePythonCompact(root);
  assert.equal(serializePythonCompact(parseRawJson(compact)), compact, `${where}: serialising is a fixed point`);
  const verdict = verifyIncomingSignature(root, secret);
  if (generated.isSigned) assert.equal(verdict.valid, true, `${where}: a message signed like Port signs it verifies`);
  const plain = toPlainValue(root);
  for (const role of ['runs', 'changelog'] as const) {
    const classification = expectOnly(() => classify(plain, role), MessageError, `${where} classify(${role})`);
    if (classification?.kind !== 'invocation') continue;
    const method = expectOnly(() => readInvocationMethod(classification.rawInvocationMethod, role, classification.runId), MessageError, `${where} readInvocationMethod`);
    if (method === undefined) continue;
    assertSentWithoutSignature(plain as Message, withoutSignatureHeaders(plain as Message, method.type), method.type, where);
  }
}

describe('fuzzing the message stage', () => {
  let port: PortStandIn;
  let target: WebhookTarget;
  let pools: Pools;
  const compilers: DialectCompiler[] = [];

  before(async () => {
    port = await startPortStandIn({ clientSecret: DECRYPT_FIXTURE.secret });
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        if (request.path.startsWith('/fail')) return { status: 500, body: 'internal error' };
        if (request.path.startsWith('/json')) return { status: 200, body: { id: 7, web_url: 'http://gitlab.internal/p/7', message: { nested: [1, '\ud800'] } } };
        if (request.path.startsWith('/missing')) return { status: 404 };
        if (request.path.endsWith('/trigger/pipeline')) return { status: 201, body: { id: 4711, web_url: 'http://gitlab.internal/p/4711' } };
        return { status: 202 };
      },
    });
    const refused = await refusedUrl();
    pools = {
      urls: [
        `${target.url}/ok`,
        `${target.url}/json`,
        `${target.url}/fail`,
        `${target.url}/missing`,
        `${target.url}/ok?token=query-secret`,
        `${target.url}/${'long'.repeat(1000)}`,
        `http://user:pass@${target.url.slice('http://'.length)}/credentials`,
        `${refused}/refused`,
        'https://127.0.0.1:1/tls-refused',
        'file:///etc/passwd',
        'ftp://127.0.0.1:1/file',
        'data:text/plain,hello',
        'javascript:alert(1)',
        'gopher://127.0.0.1:1/',
        'http://',
        'not a url',
        '',
        'http://[::1',
        ' http://127.0.0.1:1/ ',
      ],
    };
  });

  after(async () => {
    for (const compiler of compilers) compiler.close();
    await target.close();
    await port.close();
  });

  it(`parses, classifies and reads ${STAGE_MESSAGES} generated messages without an unexpected error`, (t) => {
    t.diagnostic(`FUZZ_SEED=${SEED}`);
    const random = createRandom(SEED);
    const kinds = new Map<string, number>();
    for (let index = 0; index < STAGE_MESSAGES; index++) {
      const generated = generate(random, pools, port.clientSecret);
      kinds.set(generated.kind, (kinds.get(generated.kind) ?? 0) + 1);
      runStages(generated, port.clientSecret, replay(index, generated));
    }
    t.diagnostic(`kinds: ${JSON.stringify(Object.fromEntries(kinds))}`);
  });

  it(`handles ${HANDLER_MESSAGES} generated messages end to end, in both dialects, always with an outcome`, async (t) => {
    t.diagnostic(`FUZZ_SEED=${SEED}`);
    const { logger, lines, text: logText } = capturingLogger();
    const environment = expressionEnvironment({ GITLAB_URL: `${target.url}/`, platform_infra_deployer: 'glptt-fuzz', PORT_CLIENT_SECRET: port.clientSecret });
    const decrypting = (dialect: 'jq' | 'jsonata') => ({
      enabled: dialect === 'jq' ? '.payload.action.identifier == "decrypt"' : "payload.action.identifier = 'decrypt'",
      fieldsToDecryptPaths: ['payload.properties.secret', 'payload.items.0.token', 'payload.properties.absent.path'],
      url: dialect === 'jq' ? '.payload.action.invocationMethod.url' : 'payload.action.invocationMethod.url',
      report: { summary: dialect === 'jq' ? '.response.json.message | tostring' : '$string(response.json.message)', link: dialect === 'jq' ? '.response.json.web_url' : 'response.json.web_url' },
    });
    const reporter = testReporter(port, logger);
    const handlers = (['jsonata', 'jq'] as const).map((dialect) => {
      const compiler = createCompiler(dialect, environment);
      compilers.push(compiler);
      const mappings = [decrypting(dialect), ...(dialect === 'jq' ? OFFICIAL_JQ_DEFAULT : BUILT_IN_DEFAULT)];
      return createMessageHandler({
        mapper: createMapper(compileMappings(mappings, compiler)),
        deliverer: testDeliverer({ secret: port.clientSecret, timeoutMs: 3000 }),
        reporter,
        logger,
        secret: port.clientSecret,
        skipUnmatchedNodeRuns: false,
      maxMessageBytes: 1_048_576,
        decryptionKey: decryptionKey(port.clientSecret),
      });
    });

    const random = createRandom(SEED ^ 0x5eed);
    const generated = Array.from({ length: HANDLER_MESSAGES }, () => generate(random, pools, port.clientSecret));
    const outcomes = new Map<string, number>();
    for (let start = 0; start < generated.length; start += HANDLER_CONCURRENCY) {
      await Promise.all(
        generated.slice(start, start + HANDLER_CONCURRENCY).map(async (message, offset) => {
          const index = start + offset;
          const source: SourceMessage = { topic: `org.${message.role}`, partition: index % 4, offset: String(index), role: message.role, origin: 'kafka', value: message.bytes, traceparent: undefined };
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<'hang'>((resolve) => {
            timer = setTimeout(() => resolve('hang'), MESSAGE_DEADLINE_MS);
          });
          const outcome = await Promise.race([untilReported(handlers[index % 2]!)(source), deadline]).finally(() => clearTimeout(timer));
          assert.ok((OUTCOMES as readonly string[]).includes(outcome), `${replay(index, message)} (${index % 2 === 0 ? 'jsonata' : 'jq'}): outcome ${outcome}`);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }),
      );
    }
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}; Port calls: ${port.calls.length}; service requests: ${target.requests.length}`);

    const unexpected = lines.filter((line) => line.msg === 'message handling failed unexpectedly');
    assert.deepEqual(
      unexpected.map((line) => ({ offset: line.offset, err: line.err })),
      [],
      `no message takes the unexpected-failure path; replay: ${unexpected.map((line) => replay(Number(line.offset), generated[Number(line.offset)]!)).join('\n')}`,
    );
    // jq 1.6 exits at input it cannot read, failing every message in flight with it: never again.
    const jqStops = lines.filter((line) => /jq stopped|jq could not run/.test(String(line.err ?? '')));
    assert.deepEqual(jqStops.map((line) => `${String(line.offset)}: ${String(line.err)}`), [], 'the resident jq process never stops on a message');
    const refusedSignatures = lines.filter((line) => line.msg === 'message dropped: invalid signature' && generated[Number(line.offset)]?.isSigned);
    assert.deepEqual(refusedSignatures.map((line) => replay(Number(line.offset), generated[Number(line.offset)]!)), [], 'messages signed like Port signs them pass the check');
    assert.ok(outcomes.get('delivered')! > 0 && outcomes.get('failed')! > 0 && outcomes.get('dropped')! > 0, `every path is exercised: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok(!logText().includes(port.clientSecret), 'the client secret is never logged');
    assert.ok(!logText().includes('query-secret'), 'query strings are never logged');
    for (const request of target.requests) assert.ok(request.path !== '/refused');
  });
});
