/**
 * The built agent trusts a private CA found only in a CA folder (AGENT_CA_DIRECTORIES), as the
 * official image trusts /usr/local/share/ca-certificates: a TLS webhook verified with
 * WEBHOOK_VERIFY_SSL=true, the Port API and Kafka (each behind stunnel4 with a certificate that CA
 * signed). A broken PEM file beside it is named in one warning and the agent runs on; without the
 * folder, verification fails.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { startBrokerFronts } from '../support/broker-front.js';
import type { BrokerFronts } from '../support/broker-front.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { startTlsTunnel } from '../support/stunnel.js';
import type { TlsTunnel } from '../support/stunnel.js';
import { folderWith } from '../support/temp-folder.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCa } from '../support/test-ca.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent } from '../support/harness.js';

const BROKEN_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('a private CA trusted from a CA folder alone', () => {
  let ca: TestCa;
  let broker: Broker;
  let fronts: BrokerFronts;
  let port: PortStandIn;
  let tunnel: TlsTunnel;
  let target: WebhookTarget;
  const agents: AgentProcess[] = [];

  before(async () => {
    ca = createTestCa();
    broker = await startBroker();
    port = await startPortStandIn();
    fronts = await startBrokerFronts(broker.brokers);
    // One stunnel: a TLS port per broker front, then one for the Port stand-in.
    tunnel = await startTlsTunnel([...fronts.addresses, new URL(port.url).host], ca.server);
    fronts.advertise(tunnel.addresses.slice(0, fronts.addresses.length));
    target = await startWebhookTarget({ secret: port.clientSecret, tls: ca.server, respond: () => ({ status: 200, body: { deployed: true } }) });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await tunnel?.close();
    await fronts?.close();
    await closeRealParts({ target, port, broker });
  });

  it('verifies the webhook, the Port API and Kafka against it, naming a broken PEM beside it in one warning', async () => {
    const folder = folderWith({ 'corp-ca.crt': ca.caPem, 'broken.pem': BROKEN_PEM });
    const portOverTls = `https://${tunnel.addresses.at(-1) ?? ''}`;
    const setup = agentSetup(broker, port, {
      AGENT_CA_DIRECTORIES: folder,
      WEBHOOK_VERIFY_SSL: 'true',
      PORT_API_BASE_URL: portOverTls,
      KAFKA_CONSUMER_SECURITY_PROTOCOL: 'SSL',
      KAFKA_CONSUMER_BOOTSTRAP_SERVERS: tunnel.addresses.slice(0, fronts.addresses.length).join(','),
    });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_ca_folder', url: `${target.url}/deploy`, synchronized: true }), port.clientSecret) }]);
    const agent = await startConsumingAgent(setup);
    agents.push(agent);
    await waitFor(() => port.actionRunLogs('r_ca_folder').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run reported' });
    assert.deepEqual(port.actionRunPatches('r_ca_folder'), [{ status: 'SUCCESS' }]);
    assert.equal(target.requests.length, 1, 'the webhook was reached over verified TLS');

    const trusted = agent.logs.find((line) => line.msg === 'trusted certificate authorities');
    assert.equal(trusted?.added, 1);
    assert.deepEqual(trusted?.sources, [{ variable: 'AGENT_CA_DIRECTORIES', path: folder, exists: true, certificates: 1, added: 1 }]);
    const naming = agent.rawLogs.filter((line) => line.includes('broken.pem'));
    assert.equal(naming.length, 1, naming.join('\n'));
    const [warning] = agent.logs.filter((line) => line.msg === 'certificate files skipped: nothing in them is trusted');
    assert.equal(warning?.level, 'warn');
    const skipped = warning?.skipped as { path: string; reason: string }[] | undefined;
    assert.deepEqual(skipped?.map((entry) => entry.path), [join(folder, 'broken.pem')]);
    assert.match(skipped?.[0]?.reason ?? '', /^certificate 1 of 1 cannot be parsed: /);
    const startedAt = agent.logs.findIndex((line) => line.msg === 'port-agent starting');
    assert.ok(agent.logs.indexOf(warning ?? {}) < startedAt, 'said at start');
  });

  it('fails verification of the same webhook when the folder is not among AGENT_CA_DIRECTORIES', async () => {
    const setup = agentSetup(broker, port, { AGENT_CA_DIRECTORIES: folderWith({}), WEBHOOK_VERIFY_SSL: 'true' });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_ca_not_trusted', url: `${target.url}/deploy`, synchronized: true }), port.clientSecret) }]);
    const before = target.requests.length;
    const agent = await startConsumingAgent(setup);
    agents.push(agent);
    await waitFor(() => port.actionRunPatches('r_ca_not_trusted').length > 0, { timeoutMs: 20_000, description: 'the run reported' });
    const [patch] = port.actionRunPatches('r_ca_not_trusted') as { status: string; summary?: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.match(patch?.summary ?? '', /certificate/i);
    assert.equal(target.requests.length, before, 'no request got through');
    assert.equal(agent.logs.find((line) => line.msg === 'trusted certificate authorities')?.added, 0);
  });
});
