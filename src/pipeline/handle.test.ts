import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import { actionRunMessage, nodeRunMessage, signed } from '../../test/support/messages.js';
import type { Deliverer, DeliveryContext, DeliveryResult } from '../delivery/send.js';
import { DeliveryError } from '../errors.js';
import { compileMappings } from '../mapping/compile.js';
import { createJsonataCompiler } from '../mapping/expression.js';
import { createMapper } from '../mapping/render.js';
import type { RequestSpec } from '../mapping/types.js';
import type { Reporter, RunRef, RunReports } from '../reporting/reporter.js';
import type { SourceMessage } from '../shared/source-message.js';
import { createMessageHandler } from './handle.js';
import type { HandlerDeps } from './handle.js';

const SECRET = 'handler-test-secret-of-at-least-32-bytes';
const URL = 'http://svc.internal/hooks';

/** What the handler told the reporter, run by run, in order. */
interface ReportedRun {
  run: RunRef;
  calls: string[];
}

function recordingReporter(): { reporter: Reporter; runs: ReportedRun[] } {
  const runs: ReportedRun[] = [];
  const reporter: Reporter = {
    open(run) {
      const reported: ReportedRun = { run, calls: [] };
      runs.push(reported);
      const reports: RunReports = {
        received: () => reported.calls.push('received'),
        preparing: () => reported.calls.push('preparing'),
        sending: ({ method, url }) => reported.calls.push(`sending ${method} ${url}`),
        retrying: (notice) => reported.calls.push(`retrying ${notice.attemptNumber}`),
        responded: (response) => reported.calls.push(`responded ${response.status}`),
        failed: (summary) => reported.calls.push(`failed: ${summary}`),
        settled: () => Promise.resolve(),
      };
      return reports;
    },
    announceStreamer: () => Promise.resolve(),
  };
  return { reporter, runs };
}

/** A deliverer answering every request as `answer` says, recording what it was asked. */
function fakeDeliverer(answer: (request: RequestSpec) => DeliveryResult | Error): { deliverer: Deliverer; sent: { request: RequestSpec; context: DeliveryContext }[] } {
  const sent: { request: RequestSpec; context: DeliveryContext }[] = [];
  const deliverer: Deliverer = {
    deliver(request, context) {
      sent.push({ request, context });
      const result = answer(request);
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
  };
  return { deliverer, sent };
}

const answered = (status: number): DeliveryResult => ({
  kind: 'response',
  response: { status, headers: {}, headersAsSent: {}, text: '', json: undefined },
  attempts: 1,
  durationMs: 5,
});

function handlerWith(overrides: Partial<HandlerDeps> & { mappings?: unknown }) {
  const logs = capturingLogger('debug');
  const { reporter, runs } = recordingReporter();
  const mappings = overrides.mappings ?? [{ enabled: true }];
  const handle = createMessageHandler({
    mapper: createMapper(compileMappings(mappings, createJsonataCompiler({}))),
    deliverer: fakeDeliverer(() => answered(200)).deliverer,
    reporter,
    logger: logs.logger,
    secret: SECRET,
    skipUnmatchedNodeRuns: false,
    decryptionKey: undefined,
    maxMessageBytes: 1_048_576,
    ...overrides,
  });
  return { handle, runs, logs };
}

const fromKafka = (value: string | null, offset = '7'): SourceMessage => ({
  topic: 'org.runs',
  partition: 0,
  offset,
  role: 'runs',
  origin: 'kafka',
  value: value === null ? null : Buffer.from(value, 'utf8'),
  traceparent: undefined,
});

describe('createMessageHandler', () => {
  it('delivers a run and reports received, preparing, sending and the response, in that order', async () => {
    const { deliverer, sent } = fakeDeliverer(() => answered(201));
    const { handle, runs } = handlerWith({ deliverer });
    const handled = await handle(fromKafka(signed(actionRunMessage({ runId: 'r_ok', url: URL }), SECRET)));
    assert.equal(handled.outcome, 'delivered');
    await handled.reported;
    assert.deepEqual(runs, [{ run: { kind: 'action-run', runId: 'r_ok', synchronized: false }, calls: ['received', 'preparing', `sending POST ${URL}`, 'responded 201'] }]);
    assert.equal(sent[0]?.context.idempotencyKey, 'r_ok');
    assert.match(sent[0]?.context.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('counts an error status as a failed run, reported with the response', async () => {
    const { handle, runs } = handlerWith({ deliverer: fakeDeliverer(() => answered(503)).deliverer });
    assert.equal((await handle(fromKafka(signed(actionRunMessage({ runId: 'r_503', url: URL }), SECRET)))).outcome, 'failed');
    assert.deepEqual(runs[0]?.calls.at(-1), 'responded 503');
  });

  it('reports a request that could not be delivered as FAILURE with the reason', async () => {
    const refused = new DeliveryError('connection refused', { url: URL, method: 'POST', attempt: 3, retriable: true });
    const { handle, runs } = handlerWith({ deliverer: fakeDeliverer(() => ({ kind: 'failure', error: refused, attempts: 3, durationMs: 40 })).deliverer });
    assert.equal((await handle(fromKafka(signed(actionRunMessage({ runId: 'r_refused', url: URL }), SECRET)))).outcome, 'failed');
    assert.equal(runs[0]?.calls.at(-1), `failed: The agent could not deliver the request to POST ${URL}: connection refused (after 3 attempts).`);
  });

  it('fails a run whose message cannot be read but shows its run id, naming the node-run kind by its id', async () => {
    const { handle, runs, logs } = handlerWith({});
    const handled = await handle(fromKafka('{"context": {"runId": "wfnr_garbled"}, "payload": '));
    assert.equal(handled.outcome, 'failed');
    assert.deepEqual(runs[0]?.run, { kind: 'node-run', runId: 'wfnr_garbled', synchronized: false });
    assert.match(runs[0]?.calls[0] ?? '', /^failed: The agent could not read the run's message: not valid JSON: /);
    const dropped = logs.lines.find((line) => line.msg === 'message dropped: it cannot be read');
    assert.equal(dropped?.runId, 'wfnr_garbled');
    assert.equal(dropped?.offset, '7');
  });

  it('drops an empty message and one with a bad signature without reporting an action run', async () => {
    const { handle, runs, logs } = handlerWith({});
    assert.equal((await handle(fromKafka(null))).outcome, 'dropped');
    const forged = signed(actionRunMessage({ runId: 'r_forged', url: URL }), 'another-secret-of-at-least-32-bytes!!');
    assert.equal((await handle(fromKafka(forged))).outcome, 'dropped');
    assert.deepEqual(runs, []);
    assert.deepEqual(
      logs.lines.filter((line) => line.level === 'warn').map((line) => [line.msg, line.runId]),
      [
        ['message dropped: it has no value', undefined],
        ['message dropped: invalid signature', 'r_forged'],
      ],
    );
  });

  it('fails a node run with a bad signature: Port waits on it', async () => {
    const { handle, runs } = handlerWith({});
    const forged = signed(nodeRunMessage({ runId: 'wfnr_forged', url: URL }), 'another-secret-of-at-least-32-bytes!!');
    assert.equal((await handle(fromKafka(forged))).outcome, 'dropped');
    assert.deepEqual(runs, [{ run: { kind: 'node-run', runId: 'wfnr_forged', synchronized: false }, calls: ['failed: The agent rejected the message: its signature is invalid.'] }]);
  });

  it('fails a node run no mapping matches, and skips an action run silently for another agent', async () => {
    const { handle, runs } = handlerWith({ mappings: [{ enabled: false }] });
    assert.equal((await handle(fromKafka(signed(nodeRunMessage({ runId: 'wfnr_unmatched', url: URL }), SECRET)))).outcome, 'failed');
    assert.equal((await handle(fromKafka(signed(actionRunMessage({ runId: 'r_unmatched', url: URL }), SECRET)))).outcome, 'skipped');
    assert.deepEqual(runs.map((run) => run.run.runId), ['wfnr_unmatched']);
  });

  it('fails a claimed action run no mapping matches: no other agent will see it', async () => {
    const { handle, runs } = handlerWith({ mappings: [{ enabled: false }] });
    const claimed: SourceMessage = { ...fromKafka(JSON.stringify(actionRunMessage({ runId: 'r_claimed', url: URL }))), origin: 'claimed' };
    assert.equal((await handle(claimed)).outcome, 'failed');
    assert.match(runs[0]?.calls[0] ?? '', /^failed: The agent found no payload mapping for this action run\. It was claimed through Port's polling API/);
  });

  it('reports a mapping that fails to render as FAILURE naming the field', async () => {
    const { handle, runs, logs } = handlerWith({ mappings: [{ enabled: true, url: '$error("no url for you")' }] });
    assert.equal((await handle(fromKafka(signed(actionRunMessage({ runId: 'r_mapping', url: URL }), SECRET)))).outcome, 'failed');
    assert.match(runs[0]?.calls.at(-1) ?? '', /^failed: The payload mapping failed: .*no url for you/);
    assert.equal(logs.lines.find((line) => line.msg === 'run failed: the payload mapping failed')?.field, 'url');
  });

  it('never throws: a defect while delivering fails the accepted run and is logged with its stack', async () => {
    const { handle, runs, logs } = handlerWith({ deliverer: fakeDeliverer(() => new TypeError('boom')).deliverer });
    const handled = await handle(fromKafka(signed(actionRunMessage({ runId: 'r_defect', url: URL }), SECRET)));
    assert.equal(handled.outcome, 'failed');
    assert.equal(runs[0]?.calls.at(-1), 'failed: The agent failed to process the run: boom.');
    const line = logs.lines.find((entry) => entry.msg === 'message handling failed unexpectedly');
    assert.equal(line?.runId, 'r_defect');
    assert.match(String(line?.stack), /TypeError: boom/);
  });

  it('keys a change-log event by its place and reports nothing', async () => {
    const { deliverer, sent } = fakeDeliverer(() => answered(200));
    const { handle, runs } = handlerWith({ deliverer });
    const event: SourceMessage = {
      ...fromKafka(JSON.stringify({ context: { runId: null }, changelogDestination: { type: 'WEBHOOK', agent: true, url: URL } }), '99'),
      topic: 'org.change.log',
      role: 'changelog',
    };
    const handled = await handle(event);
    assert.equal(handled.outcome, 'delivered');
    assert.equal(handled.reported, undefined);
    assert.equal(sent[0]?.context.idempotencyKey, 'org.change.log-0-99');
    assert.deepEqual(runs, []);
  });
});
