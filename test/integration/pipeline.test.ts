/**
 * The message pipeline in-process with real parts (a real service, the Port stand-in, the real
 * stages): the mapping rules of SPEC §5 that end a run — no match, a failing expression, fields
 * that cannot be decrypted.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { compileMappings } from '../../src/mapping/compile.js';
import { createJsonataCompiler } from '../../src/mapping/expression.js';
import { createMapper } from '../../src/mapping/render.js';
import { decryptionKey } from '../../src/message/decrypt.js';
import { createMessageHandler } from '../../src/pipeline/handle.js';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import { testDeliverer } from '../support/deliverer.js';
import { capturingLogger } from '../support/log-lines.js';
import { testReporter, untilReported } from '../support/reporter.js';
import { actionRunMessage, nodeRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { signedMessageBytes } from '../support/signed-message.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';

const DECRYPT_FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/decrypt-fields.json', import.meta.url), 'utf8')) as {
  secret: string;
  bad: { name: string; encrypted: string }[];
};

describe('the pipeline ends every run the mapping cannot serve', () => {
  let port: PortStandIn;
  let target: WebhookTarget;
  const { logger, lines } = capturingLogger();

  before(async () => {
    port = await startPortStandIn({ clientSecret: DECRYPT_FIXTURE.secret });
    target = await startWebhookTarget({ secret: port.clientSecret });
  });

  after(async () => {
    await target.close();
    await port.close();
  });

  function handler(mappings: unknown, options: { skipUnmatchedNodeRuns?: boolean; maxMessageAgeMs?: number; allowedTargets?: string[]; maxMessageBytes?: number } = {}) {
    return untilReported(createMessageHandler({
      mapper: createMapper(compileMappings(mappings, createJsonataCompiler({}))),
      deliverer: testDeliverer({ secret: port.clientSecret, timeoutMs: 2000, allowedTargets: options.allowedTargets }),
      reporter: testReporter(port, logger),
      logger,
      secret: port.clientSecret,
      skipUnmatchedNodeRuns: options.skipUnmatchedNodeRuns ?? false,
      decryptionKey: decryptionKey(port.clientSecret),
      maxMessageAgeMs: options.maxMessageAgeMs,
      maxMessageBytes: options.maxMessageBytes ?? 1_048_576,
    }));
  }

  const onRuns = (message: Record<string, unknown>, offset: string) => ({ topic: 'org.runs', partition: 0, offset, role: 'runs' as const, origin: 'kafka' as const, value: Buffer.from(signed(message, port.clientSecret)), traceparent: undefined });

  it('fails a node run no mapping matches, and skips it silently when told to', async () => {
    const mappings = [{ enabled: "payload.action.invocationMethod.url = 'http://never'" }];
    assert.equal(await handler(mappings)(onRuns(nodeRunMessage({ runId: 'wfnr_unmatched', url: `${target.url}/x` }), '1')), 'failed');
    assert.deepEqual(port.nodeRunPatches('wfnr_unmatched'), [{ status: 'COMPLETED', result: 'FAILED' }]);
    assert.equal(await handler(mappings, { skipUnmatchedNodeRuns: true })(onRuns(nodeRunMessage({ runId: 'wfnr_skipped', url: `${target.url}/x` }), '2')), 'skipped');
    assert.equal(port.apiCallsForRun('wfnr_skipped').length, 0);
    assert.equal(await handler(mappings)(onRuns(actionRunMessage({ runId: 'r_unmatched', url: `${target.url}/x` }), '3')), 'skipped');
    assert.equal(port.apiCallsForRun('r_unmatched').length, 0, 'action runs no mapping matches are left to another agent');
  });

  it('fails a run whose expression fails, with a summary naming the field', async () => {
    const outcome = await handler([{ body: { count: '$number(payload.properties.version)' } }])(onRuns(actionRunMessage({ runId: 'r_bad_expression', url: `${target.url}/never` }), '4'));
    assert.equal(outcome, 'failed');
    const [patch] = port.actionRunPatches('r_bad_expression') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.match(patch?.summary ?? '', /^The payload mapping failed: Mapping 0, field "body.count": the expression failed: Unable to cast value to a number: "1.4.2"/);
    assert.deepEqual(port.actionRunLogs('r_bad_expression'), [RUN_LOG.actionReceived, RUN_LOG.preparing, patch?.summary]);
    assert.equal(target.requests.filter((request) => request.path === '/never').length, 0);
  });

  it('drops a signed message older than the replay window, sending and reporting nothing', async () => {
    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
    const old = signedMessageBytes(actionRunMessage({ runId: 'r_replayed', url: `${target.url}/replayed` }), port.clientSecret, anHourAgo);
    const outcome = await handler([{}], { maxMessageAgeMs: 300_000 })({ ...onRuns({}, '30'), value: Buffer.from(old) });
    assert.equal(outcome, 'dropped');
    assert.equal(target.requests.filter((request) => request.path === '/replayed').length, 0);
    assert.equal(port.apiCallsForRun('r_replayed').length, 0, 'a replayed run is long finished: no report');
    const warning = lines.find((line) => line.msg === 'message dropped: older than AGENT_MAX_MESSAGE_AGE_SECONDS' && line.runId === 'r_replayed');
    // The age is rounded to whole seconds and may cross a second boundary while the test runs.
    assert.ok(warning?.ageSeconds === 3600 || warning?.ageSeconds === 3601, `age ${String(warning?.ageSeconds)}`);
    assert.equal(await handler([{}], { maxMessageAgeMs: 300_000 })(onRuns(actionRunMessage({ runId: 'r_fresh', url: `${target.url}/fresh` }), '31')), 'delivered');
  });

  it('refuses a message larger than AGENT_MAX_MESSAGE_BYTES unread, reporting FAILURE for the run id it shows', async () => {
    const large = actionRunMessage({ runId: 'r_too_large', url: `${target.url}/too-large`, properties: { blob: 'x'.repeat(2_000) } });
    assert.equal(await handler([{}], { maxMessageBytes: 1_000 })(onRuns(large, '34')), 'failed');
    const [patch] = port.actionRunPatches('r_too_large') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.match(patch?.summary ?? '', /^The agent could not read the run's message: the message is \d+ bytes, larger than AGENT_MAX_MESSAGE_BYTES \(1000\)\.$/);
    assert.equal(target.requests.filter((request) => request.path === '/too-large').length, 0);
    assert.equal(await handler([{}], { maxMessageBytes: 100_000 })(onRuns({ ...large, context: { runId: 'r_large_enough' } }, '35')), 'delivered');
  });

  it('refuses a run aimed outside WEBHOOK_ALLOWED_HOSTS and reports FAILURE saying so', async () => {
    const allowedTargets = [new URL(target.url).host];
    const outside = 'http://10.255.255.1:9/steal';
    assert.equal(await handler([{}], { allowedTargets })(onRuns(actionRunMessage({ runId: 'r_outside', url: outside, synchronized: true }), '32')), 'failed');
    const [patch] = port.actionRunPatches('r_outside') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.equal(patch?.summary, 'The agent could not deliver the request to POST http://10.255.255.1:9/steal: the agent refused it: 10.255.255.1:9 is not allowed by WEBHOOK_ALLOWED_HOSTS (after 1 attempt).');
    assert.equal(await handler([{}], { allowedTargets })(onRuns(actionRunMessage({ runId: 'r_inside', url: `${target.url}/inside` }), '33')), 'delivered');
  });

  it('follows no redirect to a host outside WEBHOOK_ALLOWED_HOSTS: nothing is sent there and the run fails naming it', async () => {
    const outside = await startWebhookTarget({ secret: port.clientSecret });
    const redirecting = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        if (request.path === '/to-outside') return { status: 307, headers: { location: `${outside.url}/stolen?token=t` } };
        return request.path === '/to-inside' ? { status: 307, headers: { location: '/landed' } } : {};
      },
    });
    try {
      const allowedTargets = [new URL(redirecting.url).host];
      const outsideHost = new URL(outside.url).host;
      const handle = handler([{}], { allowedTargets });
      assert.equal(await handle(onRuns(actionRunMessage({ runId: 'r_redirect_out', url: `${redirecting.url}/to-outside`, synchronized: true }), '36')), 'failed');
      assert.deepEqual(redirecting.requests.map((request) => request.path), ['/to-outside']);
      assert.equal(outside.requests.length, 0, 'nothing reaches the host the list does not allow');
      const [patch] = port.actionRunPatches('r_redirect_out') as { status: string; summary: string }[];
      assert.equal(patch?.status, 'FAILURE');
      assert.equal(
        patch?.summary,
        `The agent could not deliver the request to POST ${redirecting.url}/to-outside: redirect to ${outsideHost} refused: not allowed by WEBHOOK_ALLOWED_HOSTS (after 1 attempt).`,
      );
      // The host answered: refused redirects do not open its circuit breaker (5 failures in a row would).
      for (let run = 1; run <= 5; run += 1) {
        assert.equal(await handle(onRuns(actionRunMessage({ runId: `r_redirect_out_${run}`, url: `${redirecting.url}/to-outside` }), `${40 + run}`)), 'failed');
      }
      assert.equal(outside.requests.length, 0);
      // A redirect within the allowed host is followed, as before.
      assert.equal(await handle(onRuns(actionRunMessage({ runId: 'r_redirect_in', url: `${redirecting.url}/to-inside` }), '37')), 'delivered');
      assert.deepEqual(redirecting.requests.map((request) => request.path), [...Array<string>(6).fill('/to-outside'), '/to-inside', '/landed']);
      // With no list, the agent follows redirects anywhere (the official agent's behaviour).
      assert.equal(await handler([{}])(onRuns(actionRunMessage({ runId: 'r_redirect_open', url: `${redirecting.url}/to-outside` }), '38')), 'delivered');
      assert.deepEqual(outside.requests.map((request) => request.path), ['/stolen']);
    } finally {
      await redirecting.close();
      await outside.close();
    }
  });

  it('sends a field that cannot be decrypted as it was, warning without the value', async () => {
    for (const [index, bad] of DECRYPT_FIXTURE.bad.entries()) {
      const message = actionRunMessage({ runId: `r_undecryptable_${index}`, url: `${target.url}/decrypt-${index}`, properties: { secret: bad.encrypted } });
      assert.equal(await handler([{ fieldsToDecryptPaths: ['payload.properties.secret'] }])(onRuns(message, `${10 + index}`)), 'delivered');
      const received = target.requests.find((request) => request.path === `/decrypt-${index}`);
      assert.equal((received?.json as { payload: { properties: { secret: string } } }).payload.properties.secret, bad.encrypted, bad.name);
      const warning = lines.find((line) => line.msg === 'field left as it was: it could not be decrypted' && line.runId === `r_undecryptable_${index}`);
      assert.equal(warning?.path, 'payload.properties.secret');
      assert.ok(!JSON.stringify(lines).includes(bad.encrypted), 'the value is not logged');
    }
  });
});
