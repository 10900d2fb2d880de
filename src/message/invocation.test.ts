/**
 * Classifying a message and reading its invocation method (SPEC §3, §6) with wrong types in every
 * field: each is a MessageError naming the field and the type, with the run id when there is one,
 * and never the value (issue 7, hostile input).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageError } from '../errors.js';
import { classify, readInvocationMethod, recoverRunId, withoutSignatureHeaders } from './invocation.js';

function runMessage(invocationMethod: unknown, runId: unknown = 'r_test'): Record<string, unknown> {
  return { context: { runId }, payload: { action: { invocationMethod } }, headers: { 'X-Port-Signature': 'v1,x', 'X-Port-Timestamp': 1, other: 'kept' } };
}

/** `runId` null: the error carries none. */
function assertMessageError(action: () => unknown, expected: RegExp, runId: string | null = 'r_test'): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof MessageError, `a MessageError, got ${String(error)}`);
    assert.match(error.message, expected);
    assert.equal(error.runId ?? null, runId);
    return true;
  });
}

const read = (invocationMethod: Record<string, unknown>) => readInvocationMethod(invocationMethod, 'runs', 'r_test');

describe('classify', () => {
  it('skips a message whose agent flag is anything but true', () => {
    for (const agent of ['true', 1, 'yes', {}, [true], null]) {
      const result = classify(runMessage({ agent, url: 'http://x' }), 'runs');
      assert.deepEqual(result, { kind: 'not-for-agent', runId: 'r_test', reason: 'payload.action.invocationMethod.agent is not true' }, JSON.stringify(agent));
    }
  });

  it('skips a message whose invocation method is not an object', () => {
    for (const invocationMethod of ['WEBHOOK', 42, ['agent'], null, true]) {
      assert.equal(classify(runMessage(invocationMethod), 'runs').kind, 'not-for-agent');
    }
  });

  it('refuses a run without a usable run id, and one whose id is not a plain identifier', () => {
    for (const runId of [42, null, '', { id: 'r_1' }, ['r_1']]) {
      assertMessageError(() => classify(runMessage({ agent: true }, runId), 'runs'), /the run message has no context\.runId/, null);
    }
    for (const runId of ['r_../../admin', 'r_a b', `r_${'x'.repeat(300)}`, 'r_\n']) {
      assertMessageError(() => classify(runMessage({ agent: true }, runId), 'runs'), /context\.runId is not a valid run id/, null);
    }
  });

  it('refuses anything but a JSON object', () => {
    for (const value of [[], 'text', 42, null, true]) {
      assert.throws(() => classify(value, 'runs'), MessageError);
    }
  });
});

describe('readInvocationMethod', () => {
  it('names the field and the JSON type of a wrong string field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: 42 }, /^invocationMethod\.type must be a string \(got number\)$/],
      [{ url: 42 }, /^invocationMethod\.url must be a string \(got number\)$/],
      [{ url: { href: 'http://x' } }, /^invocationMethod\.url must be a string \(got object\)$/],
      [{ url: ['http://x'] }, /^invocationMethod\.url must be a string \(got array\)$/],
      [{ url: true }, /^invocationMethod\.url must be a string \(got boolean\)$/],
      [{ method: 7 }, /^invocationMethod\.method must be a string \(got number\)$/],
      [{ method: ['GET'] }, /^invocationMethod\.method must be a string \(got array\)$/],
      [{ synchronized: 'true' }, /^invocationMethod\.synchronized must be a boolean \(got string\)$/],
      [{ synchronized: 1 }, /^invocationMethod\.synchronized must be a boolean \(got number\)$/],
      [{ synchronized: [] }, /^invocationMethod\.synchronized must be a boolean \(got array\)$/],
    ];
    for (const [invocationMethod, expected] of cases) assertMessageError(() => read(invocationMethod), expected);
  });

  it('treats null like an absent field', () => {
    assert.deepEqual(read({ type: null, url: null, method: null, synchronized: null, headers: null }), {
      type: undefined,
      url: undefined,
      method: undefined,
      synchronized: false,
      headers: {},
    });
  });

  it('refuses headers that are not an object, or that Node.js could not send, without quoting values', () => {
    const secret = 'Bearer hunter2-secret';
    const cases: [unknown, RegExp][] = [
      ['X-Team: payments', /^invocationMethod\.headers must be an object \(got string\)$/],
      [['X-Team'], /^invocationMethod\.headers must be an object \(got array\)$/],
      [{ 'X-Team': { name: 'payments' } }, /^invocationMethod\.headers\["X-Team"\] must be a string \(got object\)$/],
      [{ 'X-Team': ['payments'] }, /^invocationMethod\.headers\["X-Team"\] must be a string \(got array\)$/],
      [{ 'Bad Name': 'x' }, /^invocationMethod\.headers has a name that is not a valid HTTP header name: "Bad Name"$/],
      [{ 'X-A\r\nX-Injected': 'x' }, /not a valid HTTP header name: "X-A\\r\\nX-Injected"$/],
      [{ Authorization: `${secret}\r\nX-Injected: 1` }, /^invocationMethod\.headers\["Authorization"\] is not a valid HTTP header value/],
      [{ Authorization: `${secret}\u0000` }, /is not a valid HTTP header value/],
      [{ 'X-Name': `日本 ${secret}` }, /is not a valid HTTP header value/],
      [{ [`X-${'n'.repeat(10_000)} `]: 'x' }, /name: "X-n{62}…"$/],
    ];
    for (const [headers, expected] of cases) {
      assert.throws(
        () => read({ headers }),
        (error: unknown) => error instanceof MessageError && expected.test(error.message) && !error.message.includes('hunter2') && error.message.length < 200,
        JSON.stringify(headers).slice(0, 80),
      );
    }
  });

  it('sends numbers and booleans as text and leaves out null headers', () => {
    assert.deepEqual(read({ headers: { 'X-Count': 3, 'X-Flag': true, 'X-Gone': null, 'X-Latin': 'café' } }).headers, { 'X-Count': '3', 'X-Flag': 'true', 'X-Latin': 'café' });
  });

  it('names changelogDestination for a change-log event', () => {
    assertMessageError(() => readInvocationMethod({ url: 1 }, 'changelog', undefined), /^changelogDestination\.url must be a string \(got number\)$/, null);
  });
});

describe('withoutSignatureHeaders and recoverRunId', () => {
  it('keeps a headers value that is not an object as it is', () => {
    const message = { headers: 'not an object', a: 1 };
    assert.equal(withoutSignatureHeaders(message, 'WEBHOOK'), message);
  });

  it('finds a run id in broken or binary text, and none in a hostile one', () => {
    assert.equal(recoverRunId('{"context": {"runId": "r_abc"}, "payload": \udc00\ufffd'), 'r_abc');
    assert.equal(recoverRunId(`{"runId": "r_${'a'.repeat(300)}"`), undefined);
    assert.equal(recoverRunId('{"runId": "x_abc"}'), undefined);
    assert.equal(recoverRunId('['.repeat(100_000)), undefined);
  });
});
