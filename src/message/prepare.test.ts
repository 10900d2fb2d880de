import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actionRunMessage, changelogMessage, nodeRunMessage } from '../../test/support/messages.js';
import { signedMessageBytes } from '../../test/support/signed-message.js';
import { prepareMessage } from './prepare.js';
import type { PrepareOptions, Prepared } from './prepare.js';

const SECRET = 'prepare-test-secret-of-at-least-32-bytes';
const NOW_MS = Date.UTC(2026, 11, 4, 12, 0, 0);
const NOW_SECONDS = Math.floor(NOW_MS / 1000);
const URL = 'http://svc.internal/hooks';

const fromKafka = (overrides: Partial<PrepareOptions> = {}): PrepareOptions => ({
  role: 'runs',
  claimed: false,
  verify: { secret: SECRET, maxMessageAgeMs: undefined, nowMs: NOW_MS },
  maxMessageBytes: 1_000_000,
  place: 'runs-0-42',
  ...overrides,
});

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
const signedAt = (message: Record<string, unknown>, seconds = NOW_SECONDS): Buffer => bytes(signedMessageBytes(message, SECRET, seconds));

function expectKind<K extends Prepared['kind']>(prepared: Prepared, kind: K): Extract<Prepared, { kind: K }> {
  assert.equal(prepared.kind, kind, JSON.stringify(prepared));
  return prepared as Extract<Prepared, { kind: K }>;
}

describe('prepareMessage', () => {
  it('turns a signed action run into a run ready to map, signature headers removed, keyed by its run id', () => {
    const ready = expectKind(prepareMessage(signedAt(actionRunMessage({ runId: 'r_abc', url: URL, method: 'PUT' })), fromKafka()), 'ready');
    assert.equal(ready.invocationKind, 'action-run');
    assert.equal(ready.runId, 'r_abc');
    assert.equal(ready.invocationMethod.url, URL);
    assert.equal(ready.invocationMethod.method, 'PUT');
    assert.deepEqual(ready.body.headers, {});
    assert.equal(ready.idempotencyKey, 'r_abc');
  });

  it('names a wfnr_ run a node run', () => {
    const ready = expectKind(prepareMessage(signedAt(nodeRunMessage({ runId: 'wfnr_1', url: URL })), fromKafka()), 'ready');
    assert.equal(ready.invocationKind, 'node-run');
  });

  it('keys a change-log event by its place, checks no signature, and reads its role off the content for the dry-run', () => {
    const event = bytes(JSON.stringify(changelogMessage({ url: URL })));
    const fromTopic = expectKind(prepareMessage(event, fromKafka({ role: 'changelog' })), 'ready');
    assert.equal(fromTopic.invocationKind, 'changelog');
    assert.equal(fromTopic.idempotencyKey, 'runs-0-42');
    const byContent = expectKind(prepareMessage(event, fromKafka({ role: 'by-content', verify: undefined })), 'ready');
    assert.equal(byContent.invocationKind, 'changelog');
  });

  it('drops a message without a value', () => {
    assert.deepEqual(expectKind(prepareMessage(null, fromKafka()), 'drop').refusal, { reason: 'no-value' });
    assert.deepEqual(expectKind(prepareMessage(Buffer.alloc(0), fromKafka()), 'drop').refusal, { reason: 'no-value' });
  });

  it('refuses a message over the size bound unread, keeping a run id it shows', () => {
    const message = signedAt(actionRunMessage({ runId: 'r_big', url: URL }));
    const unreadable = expectKind(prepareMessage(message, fromKafka({ maxMessageBytes: 100 })), 'unreadable');
    assert.equal(unreadable.stage, 'size');
    assert.equal(unreadable.error.runId, 'r_big');
    assert.match(unreadable.error.message, /larger than AGENT_MAX_MESSAGE_BYTES \(100\)/);
  });

  it('says where reading stopped: JSON, classification or invocation method', () => {
    const json = expectKind(prepareMessage(bytes('{"context":{"runId":"r_cut"'), fromKafka()), 'unreadable');
    assert.equal(json.stage, 'json');
    assert.equal(json.error.runId, 'r_cut');
    assert.match(json.error.message, /^not valid JSON: /);
    assert.equal(expectKind(prepareMessage(bytes('[1]'), fromKafka()), 'unreadable').stage, 'classification');
    const badHeaders = actionRunMessage({ runId: 'r_hdr', url: URL });
    const action = (badHeaders.payload as { action: { invocationMethod: Record<string, unknown> } }).action;
    action.invocationMethod.headers = 'not an object';
    assert.equal(expectKind(prepareMessage(signedAt(badHeaders), fromKafka()), 'unreadable').stage, 'invocation-method');
  });

  it('skips what is not for an agent, with the reason', () => {
    const skip = expectKind(prepareMessage(signedAt(actionRunMessage({ runId: 'r_other', url: URL, agent: false })), fromKafka()), 'skip');
    assert.equal(skip.runId, 'r_other');
    assert.equal(skip.reason, 'payload.action.invocationMethod.agent is not true');
  });

  it('takes a claimed run without agent: true and without a signature', () => {
    const claimed = bytes(JSON.stringify(actionRunMessage({ runId: 'r_claimed', url: URL, agent: false })));
    expectKind(prepareMessage(claimed, fromKafka({ claimed: true, verify: undefined })), 'ready');
  });

  it('drops a runs-topic message whose signature does not match, naming the run it claims to be', () => {
    const forged = signedMessageBytes(nodeRunMessage({ runId: 'wfnr_forged', url: URL }), 'another-secret-of-at-least-32-bytes!', NOW_SECONDS);
    const drop = expectKind(prepareMessage(bytes(forged), fromKafka()), 'drop');
    assert.deepEqual(drop.refusal, { reason: 'invalid-signature', signatureFailure: 'mismatch' });
    assert.equal(drop.invocationKind, 'node-run');
    assert.equal(drop.runId, 'wfnr_forged');
  });

  it('drops a signed message older than the replay window, and keeps one inside it', () => {
    const options = fromKafka({ verify: { secret: SECRET, maxMessageAgeMs: 60_000, nowMs: NOW_MS } });
    const old = expectKind(prepareMessage(signedAt(actionRunMessage({ runId: 'r_old', url: URL }), NOW_SECONDS - 120), options), 'drop');
    assert.deepEqual(old.refusal, { reason: 'too-old', ageMs: 120_000, maxAgeMs: 60_000 });
    expectKind(prepareMessage(signedAt(actionRunMessage({ runId: 'r_fresh', url: URL }), NOW_SECONDS - 30), options), 'ready');
  });

  it('finds a traceparent among the message headers', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const message = { ...actionRunMessage({ runId: 'r_traced', url: URL }), headers: { traceparent } };
    assert.equal(expectKind(prepareMessage(signedAt(message), fromKafka()), 'ready').traceparent, traceparent);
  });
});
