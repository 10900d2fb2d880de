import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, readInvocationMethod } from '../message/invocation.js';
import { buildRunMessage, claimedRunId } from './polling-message.js';

/** A Port event as it sits in a claimed action run's `payload.body`. */
const EVENT = {
  action: 'deploy_service',
  resourceType: 'run',
  status: 'TRIGGERED',
  trigger: { by: { orgId: 'org_test', userId: 'user_1' }, origin: 'UI', at: '2026-11-20T10:00:00.000Z' },
  context: { entity: 'checkout', blueprint: 'service', runId: 'r_from_event' },
  payload: {
    entity: { identifier: 'checkout' },
    action: { identifier: 'deploy_service', invocationMethod: { type: 'WEBHOOK', agent: true, url: 'http://event.example/x', synchronized: true } },
    properties: { version: '1.4.2' },
  },
};

function claimedActionRun(payload: Record<string, unknown>): Record<string, unknown> {
  return { id: 'r_claimed', status: 'IN_PROGRESS', payload };
}

function built(kind: 'action-run' | 'node-run', run: unknown, runId: string): Record<string, unknown> {
  const result = buildRunMessage(kind, run, runId);
  assert.ok(result.ok, `built (${result.ok ? '' : result.reason})`);
  return result.message;
}

describe('claimedRunId', () => {
  it('reads id for an action run and identifier for a node run', () => {
    assert.equal(claimedRunId('action-run', { id: 'r_1', identifier: 'x' }), 'r_1');
    assert.equal(claimedRunId('node-run', { id: 'x', identifier: 'wfnr_1' }), 'wfnr_1');
  });

  it('gives nothing for a run without a usable id', () => {
    assert.equal(claimedRunId('action-run', { id: '' }), undefined);
    assert.equal(claimedRunId('action-run', { id: 42 }), undefined);
    assert.equal(claimedRunId('node-run', null), undefined);
    assert.equal(claimedRunId('node-run', ['wfnr_1']), undefined);
  });
});

describe('buildRunMessage for an action run', () => {
  it('is the event with the invocation method rebuilt from the flattened keys, its headers and the run id', () => {
    const message = built(
      'action-run',
      claimedActionRun({ type: 'WEBHOOK', url: 'http://svc.internal/deploy', agent: true, synchronized: false, method: 'PUT', headers: { 'X-Team': 'payments' }, body: EVENT }),
      'r_claimed',
    );
    assert.deepEqual(message, {
      ...EVENT,
      headers: { 'X-Team': 'payments' },
      context: { entity: 'checkout', blueprint: 'service', runId: 'r_claimed' },
      payload: {
        ...EVENT.payload,
        action: {
          identifier: 'deploy_service',
          invocationMethod: { type: 'WEBHOOK', url: 'http://svc.internal/deploy', synchronized: false, method: 'PUT', headers: { 'X-Team': 'payments' } },
        },
      },
    });
  });

  it('keeps the key order of the event', () => {
    const message = built('action-run', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: EVENT }), 'r_claimed');
    assert.deepEqual(Object.keys(message), ['action', 'resourceType', 'status', 'trigger', 'context', 'payload', 'headers']);
  });

  it("replaces the event's invocation method by exactly type, url, synchronized, method and headers, as the official agent does", () => {
    const message = built('action-run', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/override', agent: true, body: EVENT }), 'r_claimed');
    const invocationMethod = (message.payload as { action: { invocationMethod: Record<string, unknown> } }).action.invocationMethod;
    assert.deepEqual(invocationMethod, { type: 'WEBHOOK', url: 'http://svc/override', synchronized: false, method: 'POST', headers: {} });
    assert.deepEqual(Object.keys(invocationMethod), ['type', 'url', 'synchronized', 'method', 'headers']);
    assert.deepEqual(message.headers, {});
  });

  it('works without a body: the message holds what the claimed run says', () => {
    const message = built('action-run', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true }), 'r_claimed');
    assert.deepEqual(message, {
      headers: {},
      payload: { action: { invocationMethod: { type: 'WEBHOOK', url: 'http://svc/x', synchronized: false, method: 'POST', headers: {} } } },
      context: { runId: 'r_claimed' },
    });
  });

  it('does not change the claimed run', () => {
    const run = claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: structuredClone(EVENT) });
    const before = structuredClone(run);
    built('action-run', run, 'r_claimed');
    assert.deepEqual(run, before);
  });

  it('is what the pipeline classifies as an agent action run, with the invocation method it reads', () => {
    const message = built('action-run', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, synchronized: true, headers: { A: 'b' }, body: EVENT }), 'r_claimed');
    const classification = classify(JSON.parse(JSON.stringify(message)) as unknown, 'runs', true);
    assert.equal(classification.kind, 'invocation');
    if (classification.kind !== 'invocation') return;
    assert.equal(classification.invocationKind, 'action-run');
    assert.equal(classification.runId, 'r_claimed');
    assert.deepEqual(readInvocationMethod(classification.rawInvocationMethod, 'runs', 'r_claimed'), {
      type: 'WEBHOOK',
      url: 'http://svc/x',
      method: 'POST',
      synchronized: true,
      headers: { A: 'b' },
    });
  });

  it('is no agent\'s run without agent: true, which the official agent checks before dropping the flag', () => {
    const message = built('action-run', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: EVENT }), 'r_claimed');
    assert.equal(classify(message, 'runs', true).kind, 'invocation', 'the flag dropped, a claimed run is still the agent\'s');
    assert.equal(classify(message, 'runs').kind, 'not-for-agent', 'the same message from Kafka would not be');
  });

  const invalid: [string, unknown, RegExp][] = [
    ['no payload', { id: 'r_claimed' }, /no payload object/],
    ['a payload that is not an object', { id: 'r_claimed', payload: [] }, /no payload object/],
    ['a body that is not an object', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: 'text' }), /payload\.body is not an object/],
    ['an event payload that is not an object', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: { payload: 3 } }), /payload\.body\.payload is not an object/],
    ['no url anywhere', claimedActionRun({ type: 'WEBHOOK', agent: true, body: {} }), /no invocation method type or url/],
    ['no type anywhere', claimedActionRun({ url: 'http://svc/x', agent: true }), /no invocation method type or url/],
    ['no agent flag', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', body: EVENT }), /no agent flag/],
    ['agent: false', claimedActionRun({ type: 'WEBHOOK', url: 'http://svc/x', agent: false, body: EVENT }), /not for an agent/],
    ['a run that is not an object', 'r_claimed', /not an object/],
  ];
  for (const [what, run, reason] of invalid) {
    it(`cannot be built from a run with ${what}`, () => {
      const result = buildRunMessage('action-run', run, 'r_claimed');
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, reason);
    });
  }
});

describe('buildRunMessage for a workflow node run', () => {
  it('is headers, the invocation method from the node config, and the run id with the config', () => {
    const config = { type: 'WEBHOOK', agent: true, url: 'http://svc/node', synchronized: true, method: 'PATCH', headers: { 'X-Node': '1' }, identifier: 'call-service' };
    const message = built('node-run', { identifier: 'wfnr_claimed', config }, 'wfnr_claimed');
    assert.deepEqual(message, {
      headers: { 'X-Node': '1' },
      payload: { action: { invocationMethod: { type: 'WEBHOOK', url: 'http://svc/node', synchronized: true, method: 'PATCH', headers: { 'X-Node': '1' } } } },
      context: { runId: 'wfnr_claimed', nodeConfig: config },
    });
    const classification = classify(message, 'runs', true);
    assert.equal(classification.kind === 'invocation' && classification.invocationKind, 'node-run');
  });

  it('takes the defaults for what the config lacks', () => {
    const message = built('node-run', { identifier: 'wfnr_claimed', config: { type: 'WEBHOOK', agent: true, url: 'http://svc/node' } }, 'wfnr_claimed');
    assert.deepEqual((message.payload as { action: { invocationMethod: unknown } }).action.invocationMethod, {
      type: 'WEBHOOK',
      url: 'http://svc/node',
      synchronized: false,
      method: 'POST',
      headers: {},
    });
  });

  it('without a config still carries all five keys, type and url null, so the pipeline fails it rather than leave it claimed', () => {
    const message = built('node-run', { identifier: 'wfnr_claimed' }, 'wfnr_claimed');
    assert.deepEqual((message.payload as { action: { invocationMethod: unknown } }).action.invocationMethod, { type: null, url: null, synchronized: false, method: 'POST', headers: {} });
    const classification = classify(message, 'runs', true);
    assert.ok(classification.kind === 'invocation');
    assert.deepEqual(readInvocationMethod(classification.rawInvocationMethod, 'runs', 'wfnr_claimed'), { type: undefined, url: undefined, method: 'POST', synchronized: false, headers: {} });
  });

  it('cannot be built from a config that is not an object', () => {
    const result = buildRunMessage('node-run', { identifier: 'wfnr_claimed', config: 'WEBHOOK' }, 'wfnr_claimed');
    assert.deepEqual(result, { ok: false, reason: 'config is not an object' });
  });
});
