/**
 * SPEC §1, issue 7: HTTP(S)_PROXY and NO_PROXY for webhook and Port API calls (https through
 * CONNECT), and NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE trusted for every TLS connection — with a
 * real forward proxy on loopback and a service whose certificate comes from a test CA.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { loadTrustedCas } from '../../src/trust/trusted-cas.js';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startAgent } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { testDeliverer } from '../support/deliverer.js';
import { startForwardProxy } from '../support/forward-proxy.js';
import type { ForwardProxy } from '../support/forward-proxy.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import { testPortClient } from '../support/reporter.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCa } from '../support/test-ca.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent } from '../support/harness.js';

const SECRET = 'proxy-test-secret-of-at-least-32-bytes!!';
const context = { logger: createLogger({ level: 'silent' }), idempotencyKey: 'r_proxy', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
const request = (url: string) => ({ method: 'POST', url, body: { hello: 'proxy' }, headers: {}, query: {} });

describe('webhook and Port API calls through a forward proxy, with a private CA', () => {
  let ca: TestCa;
  let proxy: ForwardProxy;
  let tlsTarget: WebhookTarget;
  let plainTarget: WebhookTarget;
  let port: PortStandIn;

  before(async () => {
    ca = createTestCa();
    proxy = await startForwardProxy();
    tlsTarget = await startWebhookTarget({ secret: SECRET, tls: ca.server, respond: () => ({ status: 200, body: { over: 'tls' } }) });
    plainTarget = await startWebhookTarget({ secret: SECRET, respond: () => ({ status: 200, body: { over: 'http' } }) });
    port = await startPortStandIn();
  });

  after(async () => {
    await proxy.close();
    await tlsTarget.close();
    await plainTarget.close();
    await port.close();
  });

  const trusted = () => loadTrustedCas({ files: [{ variable: 'REQUESTS_CA_BUNDLE', path: ca.caPath }], sslCertDirectories: [], directories: [] }).ca;
  const throughProxy = { httpProxy: undefined as string | undefined, httpsProxy: undefined as string | undefined, allProxy: undefined as string | undefined, noProxy: '' };

  it('tunnels an https webhook through CONNECT and trusts the CA of REQUESTS_CA_BUNDLE', async () => {
    const settings = { ...throughProxy, httpsProxy: proxy.url };
    const result = await testDeliverer({ secret: SECRET, ca: trusted(), proxy: settings }).deliver(request(`${tlsTarget.url}/secure`), context);
    assert.equal(result.kind, 'response', result.kind === 'failure' ? result.error.message : '');
    assert.deepEqual(result.kind === 'response' ? result.response.json : undefined, { over: 'tls' });
    const tunnel = new URL(tlsTarget.url);
    assert.ok(proxy.requests.some((entry) => entry.method === 'CONNECT' && entry.target === `${tunnel.hostname}:${tunnel.port}`), JSON.stringify(proxy.requests));
    assert.equal(tlsTarget.requests.at(-1)?.signatureValid, true, 'the body arrived intact and signed');
  });

  it('refuses the same service when its CA is not trusted', async () => {
    const result = await testDeliverer({ secret: SECRET, proxy: { ...throughProxy, httpsProxy: proxy.url } }).deliver(request(`${tlsTarget.url}/untrusted`), context);
    assert.equal(result.kind, 'failure');
    assert.match(result.kind === 'failure' ? result.error.message : '', /certificate/i);
  });

  it('skips verification through the tunnel too when WEBHOOK_VERIFY_SSL is false', async () => {
    const result = await testDeliverer({ secret: SECRET, verifyTls: false, proxy: { ...throughProxy, httpsProxy: proxy.url } }).deliver(request(`${tlsTarget.url}/unverified`), context);
    assert.equal(result.kind === 'response' ? result.response.status : result.error.message, 200);
  });

  it('sends an http webhook to HTTP_PROXY in absolute form', async () => {
    const result = await testDeliverer({ secret: SECRET, proxy: { ...throughProxy, httpProxy: proxy.url } }).deliver(request(`${plainTarget.url}/plain`), context);
    assert.equal(result.kind === 'response' ? result.response.status : 0, 200);
    assert.ok(proxy.requests.some((entry) => entry.method === 'POST' && entry.target === `${plainTarget.url}/plain`), JSON.stringify(proxy.requests));
  });

  it('goes direct to hosts NO_PROXY names', async () => {
    const before = proxy.requests.length;
    const settings = { ...throughProxy, httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: 'localhost,127.0.0.1' };
    const tls = await testDeliverer({ secret: SECRET, ca: trusted(), proxy: settings }).deliver(request(`${tlsTarget.url}/direct`), context);
    const plain = await testDeliverer({ secret: SECRET, proxy: settings }).deliver(request(`${plainTarget.url}/direct`), context);
    assert.equal(tls.kind === 'response' ? tls.response.status : 0, 200);
    assert.equal(plain.kind === 'response' ? plain.response.status : 0, 200);
    assert.equal(proxy.requests.length, before, 'nothing went through the proxy');
  });

  it('calls the Port API through the proxy (undici), token included', async () => {
    const before = proxy.requests.length;
    const { client } = testPortClient(port, { logger: createLogger({ level: 'silent' }), maxSockets: 4, proxy: { ...throughProxy, httpProxy: proxy.url } });
    const result = await client.call('POST', '/v1/actions/runs/r_via_proxy/logs', 'POST /v1/actions/runs/:runId/logs', { message: 'hello' });
    assert.equal(result.ok, true);
    const through = proxy.requests.slice(before).map((entry) => `${entry.method} ${entry.target}`);
    assert.deepEqual(through, [`POST ${port.url}/v1/auth/access_token`, `POST ${port.url}/v1/actions/runs/r_via_proxy/logs`]);
  });
});

describe('the agent behind a proxy, trusting a private CA', () => {
  let ca: TestCa;
  let broker: Broker;
  let proxy: ForwardProxy;
  let port: PortStandIn;
  let target: WebhookTarget;
  let agent: AgentProcess | undefined;

  before(async () => {
    ca = createTestCa();
    broker = await startBroker();
    proxy = await startForwardProxy();
    port = await startPortStandIn();
    target = await startWebhookTarget({ secret: port.clientSecret, tls: ca.server, respond: () => ({ status: 200, body: { deployed: true } }) });
  });

  after(async () => {
    await agent?.stop();
    await proxy.close();
    await closeRealParts({ target, port, broker });
  });

  it('delivers an https run through CONNECT and reports to Port through the proxy', async () => {
    // Kafka is not HTTP: the broker is reached directly whatever the proxy variables say.
    const setup = agentSetup(broker, port, { HTTPS_PROXY: proxy.url, http_proxy: proxy.url, REQUESTS_CA_BUNDLE: ca.caPath });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_behind_proxy', url: `${target.url}/deploy`, synchronized: true }), port.clientSecret) }]);
    agent = await startConsumingAgent(setup);
    await waitFor(() => port.actionRunLogs('r_behind_proxy').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run reported' });
    assert.deepEqual(port.actionRunPatches('r_behind_proxy'), [{ status: 'SUCCESS' }]);
    const tunnel = new URL(target.url);
    assert.ok(proxy.requests.some((entry) => entry.method === 'CONNECT' && entry.target === `${tunnel.hostname}:${tunnel.port}`), 'the webhook went through CONNECT');
    const portCalls = proxy.requests.filter((entry) => entry.target.startsWith(port.url));
    assert.ok(portCalls.some((entry) => entry.target === `${port.url}/v1/actions/runs/r_behind_proxy/logs`), 'the run logs and the status riding on the last one went through the proxy');
    assert.equal(portCalls.length, port.calls.length, 'every Port API call went through the proxy');
  });

  it('sends webhook and Port API calls through a proxy given only as ALL_PROXY', async () => {
    const before = proxy.requests.length;
    const setup = agentSetup(broker, port, { ALL_PROXY: proxy.url, REQUESTS_CA_BUNDLE: ca.caPath });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_all_proxy', url: `${target.url}/deploy`, synchronized: true }), port.clientSecret) }]);
    const allProxyAgent = await startConsumingAgent(setup);
    try {
      await waitFor(() => port.actionRunLogs('r_all_proxy').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run reported' });
      assert.deepEqual(port.actionRunPatches('r_all_proxy'), [{ status: 'SUCCESS' }]);
    } finally {
      await allProxyAgent.stop();
    }
    const through = proxy.requests.slice(before).map((entry) => `${entry.method} ${entry.target}`);
    const tunnel = new URL(target.url);
    assert.ok(through.includes(`CONNECT ${tunnel.hostname}:${tunnel.port}`), `the https webhook went through CONNECT: ${through.join(', ')}`);
    assert.ok(through.includes(`POST ${port.url}/v1/auth/access_token`), 'the token call went through the proxy');
    assert.ok(through.includes(`POST ${port.url}/v1/actions/runs/r_all_proxy/logs`), 'the run logs went through the proxy');
    const runCalls = port.calls.filter((call) => call.path.includes('r_all_proxy')).length;
    assert.equal(through.filter((entry) => entry.includes('r_all_proxy')).length, runCalls, "every Port API call of the run went through the proxy");
  });

  it('stops at start, naming the variable, when a CA file cannot be read', async () => {
    const failing = startAgent(agentSetup(broker, port, { REQUESTS_CA_BUNDLE: '/nonexistent/ca.pem' }).env);
    assert.equal((await failing.exitWithin(20_000)).code, 2, failing.stderr());
    assert.match(failing.stderr(), /^port-agent: Invalid configuration: REQUESTS_CA_BUNDLE names a file that cannot be read \(\/nonexistent\/ca\.pem: .*\)\n$/);
    // Node.js reads NODE_EXTRA_CA_CERTS itself before the agent starts, and only warns.
    const alsoNode = startAgent(agentSetup(broker, port, { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' }).env);
    assert.equal((await alsoNode.exitWithin(20_000)).code, 2, alsoNode.stderr());
    const lines = alsoNode.stderr().trimEnd().split('\n');
    assert.match(lines.at(-1) ?? '', /^port-agent: Invalid configuration: NODE_EXTRA_CA_CERTS names a file that cannot be read \(\/nonexistent\/ca\.pem: .*\)$/);
    assert.ok(lines.slice(0, -1).every((line) => line.startsWith('Warning: Ignoring extra certs')), alsoNode.stderr());
  });

});
