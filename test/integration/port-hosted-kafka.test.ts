/**
 * Port-hosted Kafka (SPEC §2), with the built agent as its own process and nothing test-only in it:
 * brokers, username and password come from `GET /v1/kafka-credentials` of the Port stand-in, the
 * connection uses the chart's SASL_SSL + SCRAM-SHA-512, the broker certificate is signed by a CA
 * made for this run and trusted through NODE_EXTRA_CA_CERTS or REQUESTS_CA_BUNDLE, as an operator
 * (or the chart's selfSignedCertificate) would.
 *
 * The mock broker speaks neither TLS nor SASL (docs/development.md), and kafkajs connects to the addresses
 * the broker advertises after bootstrap, so a TLS tunnel alone would send the agent back to the
 * mock's plain port. Rather than a socketFactory or another hook inside the agent, the path is:
 *
 *   agent ──TLS──▶ stunnel4 ──▶ broker front (SASL, address rewriting) ──▶ mock broker
 *
 * The front (test/support/broker-front.ts) answers the SASL exchange itself, against users the test
 * sets and changes, and makes Metadata and FindCoordinator answers name the stunnel ports, so every
 * connection the agent opens — bootstrap, group coordinator, partition leaders — goes over TLS and
 * is authenticated. Credential rotation is the front changing its users while the stand-in hands
 * out the new password.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import { startAgent } from '../support/agent-process.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { startBrokerFronts } from '../support/broker-front.js';
import type { BrokerFronts } from '../support/broker-front.js';
import { committedOffsets, produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { startTlsTunnel } from '../support/stunnel.js';
import type { TlsTunnel } from '../support/stunnel.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCa } from '../support/test-ca.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, isConsuming } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';

const USERNAME = 'org-agent';
const CREDENTIALS_ROUTE = 'GET /v1/kafka-credentials';
const REFUSED_AT_START = 'Kafka refused the credentials; fetching them again and reconnecting';
const REFUSED_WHILE_RUNNING = 'Kafka refused the credentials; fetching them again and rebuilding the consumer';

describe('Port-hosted Kafka', () => {
  let broker: Broker;
  let fronts: BrokerFronts;
  let ca: TestCa;
  let tunnel: TlsTunnel;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    broker = await startBroker();
    fronts = await startBrokerFronts(broker.brokers, { saslMechanisms: ['SCRAM-SHA-512'] });
    ca = createTestCa();
    tunnel = await startTlsTunnel(fronts.addresses, ca.server);
    fronts.advertise(tunnel.addresses);
    port = await startPortStandIn();
    target = await startWebhookTarget({ secret: port.clientSecret, respond: () => ({ status: 200 }) });
  });

  after(async () => {
    await tunnel?.close();
    await fronts?.close();
    await closeRealParts({ target, port, broker });
  });

  /** Port hands out `password`; the brokers accept `accepted` (a password Port has not rotated to yet, say). */
  function credentials(password: string, accepted: string = password): void {
    port.setKafkaCredentials({ brokers: tunnel.addresses, username: USERNAME, password });
    fronts.setUsers({ [USERNAME]: accepted });
  }

  /** The chart's settings, without USING_LOCAL_PORT_INSTANCE, so the brokers come from Port. */
  function portHostedSetup(extra: Record<string, string> = {}): AgentSetup {
    const setup = agentSetup(broker, port, {
      USING_LOCAL_PORT_INSTANCE: 'false',
      KAFKA_CONSUMER_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_CONSUMER_AUTHENTICATION_MECHANISM: 'SCRAM-SHA-512',
      NODE_EXTRA_CA_CERTS: ca.caPath,
      ...extra,
    });
    delete setup.env.KAFKA_CONSUMER_BOOTSTRAP_SERVERS;
    return setup;
  }

  async function produceRun(setup: AgentSetup, runId: string): Promise<void> {
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId, url: `${target.url}/${runId}` }), port.clientSecret) }]);
  }

  function credentialFetches(since = 0): number[] {
    return port.callsTo(CREDENTIALS_ROUTE).filter((call) => call.at >= since).map((call) => call.at);
  }

  /** SPEC §9: no password in any line, at any level (the agents here log at DEBUG, kafkajs included). */
  function assertNoPassword(agent: AgentProcess, ...passwords: string[]): void {
    const output = `${agent.logs.map((line) => JSON.stringify(line)).join('\n')}\n${agent.stderr()}`;
    for (const password of passwords) assert.ok(!output.includes(password), 'a Kafka password reached the agent\'s output');
  }

  /** Sum of the committed offsets over the runs topic's partitions: the messages handled. */
  async function committedCount(setup: AgentSetup): Promise<number> {
    const offsets = await committedOffsets(broker.brokers, setup.groupId, setup.runsTopic);
    return [...offsets.values()].reduce((total, offset) => total + Math.max(0, Number(offset)), 0);
  }

  function hasExited(agent: AgentProcess): Promise<boolean> {
    return Promise.race([agent.exited.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
  }

  for (const caVariable of ['NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE'] as const) {
    it(`consumes and commits over TLS with SCRAM-SHA-512 and the credentials Port gives, trusting the CA of ${caVariable}`, async () => {
      const password = `tls-scram-pa55-1-${caVariable}`;
      credentials(password);
      const setup = portHostedSetup({ [caVariable]: ca.caPath });
      if (caVariable !== 'NODE_EXTRA_CA_CERTS') delete setup.env.NODE_EXTRA_CA_CERTS;
      const startedAt = Date.now();
      await produceRun(setup, `r_port_hosted_${caVariable}`);
      const agent = startAgent(setup.env);
      try {
        await agent.waitForLog(isConsuming, 30_000);
        await waitFor(() => port.actionRunLogs(`r_port_hosted_${caVariable}`).includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run delivered and reported' });
        await waitFor(async () => (await committedCount(setup)) === 1, { timeoutMs: 10_000, description: 'the handled message committed' });
        assert.equal(credentialFetches(startedAt).length, 1, 'fetched once');
        const ours = fronts.authentications.filter((authentication) => authentication.at >= startedAt);
        assert.ok(ours.length > 0 && ours.every((authentication) => authentication.isAccepted && authentication.mechanism === 'SCRAM-SHA-512' && authentication.username === USERNAME));
        assert.ok(agent.logs.some((line) => line.msg === 'Kafka client configured' && line.tls === true && line.saslMechanism === 'scram-sha-512'));
        assertNoPassword(agent, password);
      } finally {
        await agent.stop();
      }
    });
  }

  it('fetches the credentials again with backoff while the brokers refuse them, then consumes, without a restart', async () => {
    const stale = 'stale-pa55-2';
    const current = 'current-pa55-2';
    credentials(stale, current);
    const setup = portHostedSetup();
    const startedAt = Date.now();
    await produceRun(setup, 'r_after_refusal');
    const agent = startAgent(setup.env);
    try {
      await waitFor(() => credentialFetches(startedAt).length >= 3, { timeoutMs: 30_000, description: 'three fetches of the Kafka credentials' });
      const [first = 0, second = 0, third = 0] = credentialFetches(startedAt);
      // The source's backoff: 1 s, then 2 s, between attempts (each attempt itself is quick).
      assert.ok(second - first >= 900, `waited ${second - first} ms before the second fetch`);
      assert.ok(third - second >= 1_800, `waited ${third - second} ms before the third fetch`);
      assert.ok(agent.logs.some((line) => line.msg === REFUSED_AT_START && line.level === 'warn'));
      assert.ok(fronts.authentications.some((authentication) => authentication.at >= startedAt && !authentication.isAccepted && authentication.username === USERNAME));
      assert.ok(!agent.logs.some(isConsuming));

      credentials(current);
      await agent.waitForLog(isConsuming, 60_000);
      await waitFor(() => port.actionRunLogs('r_after_refusal').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run delivered once the credentials work' });
      assert.equal(await hasExited(agent), false, 'the same process, never restarted');
      assertNoPassword(agent, stale, current);
    } finally {
      await agent.stop();
    }
  });

  it('reconnects with rotated credentials when the brokers drop it mid-consumption', async () => {
    const before = 'before-rotation-pa55-3';
    const rotated = 'after-rotation-pa55-3';
    credentials(before);
    const setup = portHostedSetup();
    const startedAt = Date.now();
    await produceRun(setup, 'r_before_rotation');
    const agent = startAgent(setup.env);
    try {
      await agent.waitForLog(isConsuming, 30_000);
      await waitFor(() => port.actionRunLogs('r_before_rotation').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run before the rotation' });
      assert.equal(credentialFetches(startedAt).length, 1);

      // Port rotates: the brokers accept only the new password and close the sessions of the old one.
      credentials(rotated);
      fronts.dropConnections();
      await produceRun(setup, 'r_after_rotation');
      await waitFor(() => port.actionRunLogs('r_after_rotation').includes(RUN_LOG.actionFinished), { timeoutMs: 60_000, description: 'the run after the rotation' });
      assert.ok(credentialFetches(startedAt).length >= 2, 'the credentials were fetched again');
      assert.ok(agent.logs.some((line) => line.msg === REFUSED_WHILE_RUNNING || line.msg === REFUSED_AT_START), 'the refusal was logged');
      const refusedAt = fronts.authentications.find((authentication) => authentication.at >= startedAt && !authentication.isAccepted)?.at;
      assert.ok(refusedAt !== undefined, 'the old password was refused once the brokers rotated');
      assert.ok(credentialFetches(refusedAt).length >= 1, 'fetched after the refusal');
      assert.equal(await hasExited(agent), false, 'the same process, never restarted');
      assertNoPassword(agent, before, rotated);
    } finally {
      await agent.stop();
    }
  });

  it('keeps running while Port does not give the credentials, then connects', async () => {
    const password = 'late-pa55-4';
    credentials(password);
    const setup = portHostedSetup();
    const startedAt = Date.now();
    await produceRun(setup, 'r_credentials_late');
    // Not retried by the Port client (a 4xx), so the source's own backoff is what retries.
    port.failNext(CREDENTIALS_ROUTE, 2, { status: 403 });
    const agent = startAgent(setup.env);
    try {
      await agent.waitForLog(isConsuming, 30_000);
      await waitFor(() => port.actionRunLogs('r_credentials_late').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run' });
      const fetches = port.callsTo(CREDENTIALS_ROUTE).filter((call) => call.at >= startedAt);
      assert.deepEqual(
        fetches.map((call) => call.status),
        [403, 403, 200],
      );
      assert.equal(agent.logs.filter((line) => line.msg === 'could not get the Kafka brokers and credentials; retrying').length, 2);
      assert.ok((fetches[2]?.at ?? 0) - (fetches[1]?.at ?? 0) >= 1_800, 'backed off longer after the second failure');
      assert.equal(await hasExited(agent), false);
      assertNoPassword(agent, password);
    } finally {
      await agent.stop();
    }
  });

  it('refuses a broker certificate it does not trust, with a clear error, and keeps trying', async () => {
    const password = 'untrusted-pa55-5';
    credentials(password);
    // No NODE_EXTRA_CA_CERTS: the test CA is not trusted.
    const setup = portHostedSetup({ NODE_EXTRA_CA_CERTS: '' });
    delete setup.env.NODE_EXTRA_CA_CERTS;
    const startedAt = Date.now();
    const agent = startAgent(setup.env);
    try {
      const refused = await agent.waitForLog((line) => line.msg === 'could not start the Kafka consumer; retrying', 60_000);
      assert.match(String(refused.err), /certificate/i, 'the error says the certificate is the problem');
      assert.equal(fronts.authentications.filter((authentication) => authentication.at >= startedAt).length, 0, 'no password was sent');
      assert.equal(credentialFetches(startedAt).length, 1, 'a TLS failure is not an authentication failure: no new fetch');
      assert.ok(!agent.logs.some(isConsuming));
      assert.equal(await hasExited(agent), false);
      assertNoPassword(agent, password);
    } finally {
      await agent.stop();
    }
  });
});
