/**
 * SPEC §9, issue 7: no secret in any log line. The running agent at LOG_LEVEL=DEBUG and at trace,
 * with DETAILED_LOGGING=true, goes through a full scenario — runs that succeed, fail, are retried,
 * decrypt fields, fail in a mapping over a decrypted value, get 401 from Port and refresh the token,
 * and a service that echoes the request's headers and body back — and no stdout or stderr line
 * holds the client secret, an access token, the Kafka password, a decrypted value, a credential of
 * the service, or the password and query of a URL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, nodeRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { ReceivedRequest, WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent } from '../support/harness.js';

const DECRYPT_FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/decrypt-fields.json', import.meta.url), 'utf8')) as {
  secret: string;
  cases: { path: string; plaintext: string; encrypted: string }[];
};
const KAFKA_PASSWORD = 'kafka-password-d41d8cd98f';
const KAFKA_USERNAME = 'kafka-username-0cc175b9c0';
/** A credential of the internal service, which the mapping sends in a header. */
const SERVICE_TOKEN = 'service-token-92eb5ffee6ae';
const URL_PASSWORD = 'url-password-4a8a08f09d';
const QUERY_SECRET = 'query-secret-8277e0910d';
const CLIENT_ID = 'client-id-e4da3b7fbb';

/** What the service answers: its request's headers and body back, so response texts hold them. */
function echo(request: ReceivedRequest, status: number) {
  return { status, body: { receivedHeaders: request.headers, receivedBody: request.rawBody } };
}

/** Sets `value` at a dotted path, making objects (or lists, before a numeric segment) on the way. */
function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  let current: Record<string, unknown> = root;
  segments.forEach((segment, index) => {
    if (index === segments.length - 1) {
      current[segment] = value;
      return;
    }
    current[segment] ??= /^\d+$/.test(segments[index + 1] ?? '') ? [] : {};
    current = current[segment] as Record<string, unknown>;
  });
}

function decryptingRun(runId: string, identifier: string, url: string): Record<string, unknown> {
  const message = actionRunMessage({ runId, url, synchronized: true, properties: {} });
  (message.payload as { action: { identifier: string } }).action.identifier = identifier;
  for (const vector of DECRYPT_FIXTURE.cases) setPath(message, vector.path, vector.encrypted);
  return message;
}

function valueAt(root: unknown, path: string): unknown {
  let current = root;
  for (const segment of path.split('.')) current = (current as Record<string, unknown> | undefined)?.[segment];
  return current;
}

describe('no secret in any log line', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let mappingDirectory: string;
  const retried = new Set<string>();

  before(async () => {
    broker = await startBroker();
    // The decryption vectors are encrypted with this secret; it is also the HMAC key.
    port = await startPortStandIn({ clientId: CLIENT_ID, clientSecret: DECRYPT_FIXTURE.secret });
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        if (request.path.startsWith('/fail')) return echo(request, 500);
        if (request.path.startsWith('/retry')) {
          if (!retried.has(request.path)) {
            retried.add(request.path);
            return { ...echo(request, 503), headers: { 'retry-after': '0' } };
          }
          return echo(request, 200);
        }
        return echo(request, 200);
      },
    });
    mappingDirectory = mkdtempSync(join(tmpdir(), 'no-secrets-'));
    const paths = DECRYPT_FIXTURE.cases.map((vector) => vector.path);
    const [first] = paths;
    writeFileSync(
      join(mappingDirectory, 'control_the_payload_config.json'),
      JSON.stringify([
        {
          enabled: "payload.action.identifier = 'rotate'",
          fieldsToDecryptPaths: paths,
          url: 'payload.action.invocationMethod.url',
          headers: { Authorization: "'Bearer ' & $env.SERVICE_TOKEN" },
        },
        // A URL rendered from a decrypted value (a secret webhook path): log lines show the URL's path.
        {
          enabled: "payload.action.identifier = 'secret-url'",
          fieldsToDecryptPaths: paths,
          url: `payload.action.invocationMethod.url & '/' & $encodeUrlComponent(${first})`,
        },
        // A mapping error over a decrypted value: JSONata quotes the value it cannot cast.
        { enabled: "payload.action.identifier = 'break'", fieldsToDecryptPaths: paths, body: { count: `$number(${first})` } },
        // Expressions never see the agent's own secrets.
        {
          enabled: "payload.action.identifier = 'read-env'",
          url: 'payload.action.invocationMethod.url',
          body: { secret: '$env.PORT_CLIENT_SECRET', clientId: '$env.PORT_CLIENT_ID', kafka: '$env.KAFKA_CONSUMER_PASSWORD', service: '$env.SERVICE_TOKEN' },
        },
        { url: 'payload.action.invocationMethod.url', headers: { Authorization: "'Bearer ' & $env.SERVICE_TOKEN" } },
      ]),
    );
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  for (const level of ['DEBUG', 'trace']) {
    describe(`at LOG_LEVEL=${level} with DETAILED_LOGGING=true`, () => {
      let agent: AgentProcess;
      const id = (name: string): string => `${name}_${level.toLowerCase()}`;
      const url = (path: string): string => `${target.url}${path}/${level.toLowerCase()}`;

      before(async () => {
        const setup = agentSetup(broker, port, {
          LOG_LEVEL: level,
          DETAILED_LOGGING: 'true',
          WEBHOOK_MAX_RETRIES: '2',
          KAFKA_CONSUMER_PASSWORD: KAFKA_PASSWORD,
          KAFKA_CONSUMER_USERNAME: KAFKA_USERNAME,
          SERVICE_TOKEN,
        });
        const secret = port.clientSecret;
        const credentialsUrl = url('/credentials').replace('http://', `http://user:${URL_PASSWORD}@`) + `?api_key=${QUERY_SECRET}`;
        await produce(broker.brokers, setup.runsTopic, [
          { value: signed(actionRunMessage({ runId: id('r_ok'), url: url('/ok'), synchronized: true }), secret) },
          { value: signed(actionRunMessage({ runId: id('r_fail'), url: url('/fail'), synchronized: true }), secret) },
          { value: signed(actionRunMessage({ runId: id('r_retry'), url: url('/retry'), synchronized: true }), secret) },
          { value: signed(actionRunMessage({ runId: id('r_headers'), url: url('/ok'), headers: { Authorization: `Bearer ${SERVICE_TOKEN}`, 'X-Api-Key': SERVICE_TOKEN } }), secret) },
          { value: signed(actionRunMessage({ runId: id('r_credentials'), url: credentialsUrl, synchronized: true }), secret) },
          { value: signed(decryptingRun(id('r_rotate'), 'rotate', url('/rotate')), secret) },
          { value: signed(decryptingRun(id('r_rotate_fail'), 'rotate', url('/fail-rotate')), secret) },
          { value: signed(decryptingRun(id('r_break'), 'break', url('/never')), secret) },
          { value: signed(decryptingRun(id('r_secret_url'), 'secret-url', url('/secret-url')), secret) },
          { value: signed(decryptingRun(id('r_read_env'), 'read-env', url('/read-env')), secret) },
          { value: signed(nodeRunMessage({ runId: id('wfnr_ok'), url: url('/node') }), secret) },
          // A forged message: its signature is checked, never printed.
          { value: JSON.stringify({ ...actionRunMessage({ runId: id('r_forged'), url: url('/forged') }), headers: { 'X-Port-Signature': 'v1,Zm9yZ2VkLXNpZ25hdHVyZQ==', 'X-Port-Timestamp': 1 } }) },
        ]);
        agent = await startConsumingAgent(setup, { cwd: mappingDirectory });
        const reported = ['r_ok', 'r_fail', 'r_retry', 'r_credentials', 'r_rotate', 'r_rotate_fail', 'r_break', 'r_secret_url'].map(id);
        const finished = ['r_headers', 'r_read_env'].map(id);
        const missing = (): string[] => [
          ...reported.filter((runId) => port.actionRunPatches(runId).length === 0),
          ...finished.filter((runId) => !port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)),
          ...(port.nodeRunPatches(id('wfnr_ok')).length === 0 ? [id('wfnr_ok')] : []),
          ...(agent.logs.some((line) => line.runId === id('r_forged')) ? [] : [id('r_forged')]),
        ];
        await waitFor(() => missing().length === 0, { timeoutMs: 30_000, description: () => `every run handled; missing: ${missing().join(', ')}` });

        // Port rejects the cached token: the agent fetches a new one (401, then a token request).
        const tokensBefore = port.tokenRequests();
        port.expireTokens();
        await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: id('r_after_401'), url: url('/ok'), synchronized: true }), secret) }]);
        await waitFor(() => port.actionRunLogs(id('r_after_401')).includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run after the token expired' });
        assert.ok(port.tokenRequests() > tokensBefore, 'a new token was fetched');
        assert.ok(port.calls.some((call) => call.status === 401), 'Port answered 401');
        await agent.stop();
      });

      after(async () => {
        await agent?.stop();
      });

      it('went through every path: delivered, failed, retried, decrypted, mapping error, 401', () => {
        assert.equal(port.actionRunPatches(id('r_ok')).length, 1);
        assert.match((port.actionRunPatches(id('r_fail'))[0] as { summary: string }).summary, /status code: 500\. Response: /, 'detailed summaries hold the response text');
        assert.ok(port.actionRunLogs(id('r_retry')).some((line) => /503/.test(line)), 'a retry was logged on the run');
        const rotated = target.requests.find((request) => request.path === `/rotate/${level.toLowerCase()}`);
        for (const vector of DECRYPT_FIXTURE.cases) assert.equal(valueAt(rotated?.json, vector.path), vector.plaintext, 'the service got the decrypted value');
        const [first] = DECRYPT_FIXTURE.cases;
        assert.ok(target.requests.some((request) => request.path === `/secret-url/${level.toLowerCase()}/${encodeURIComponent(first?.plaintext ?? '')}`), 'a URL was rendered from a decrypted value');
        const [breakPatch] = port.actionRunPatches(id('r_break')) as { status: string; summary: string }[];
        assert.equal(breakPatch?.status, 'FAILURE');
        // Port encrypted the value so that only the agent reads it: the summary must not show it either.
        assert.match(breakPatch?.summary ?? '', /Unable to cast value to a number: "\[decrypted value\]"/);
        for (const vector of DECRYPT_FIXTURE.cases) {
          for (const runId of ['r_break', 'r_secret_url'].map(id)) {
            assert.ok(!JSON.stringify([port.actionRunLogs(runId), port.actionRunPatches(runId)]).includes(vector.plaintext), `no decrypted value reported on ${runId}`);
          }
        }
        assert.ok(agent.logs.some((line) => line.msg === 'run failed: the payload mapping failed'));
        assert.ok(agent.logs.some((line) => line.level === (level === 'trace' ? 'trace' : 'debug')), `${level} lines were written`);
      });

      it('keeps the agent\'s own secrets from mapping expressions', () => {
        const request = target.requests.find((candidate) => candidate.path === `/read-env/${level.toLowerCase()}`);
        assert.deepEqual(request?.json, { secret: null, clientId: null, kafka: null, service: SERVICE_TOKEN });
      });

      it('writes no secret to stdout or stderr', () => {
        const lines = [...agent.logs.map((line) => JSON.stringify(line)), ...agent.stderr().split('\n')];
        const tokens = new Set<string>();
        for (const call of port.calls) {
          const token = /^Bearer\s+(\S+)$/i.exec(call.headers.authorization ?? '')?.[1];
          if (token) tokens.add(token);
        }
        assert.ok(tokens.size >= 2, 'at least two tokens were issued and used');
        const secrets: [string, string][] = [
          ['the client secret', port.clientSecret],
          ['the client id', CLIENT_ID],
          ['the Kafka password', KAFKA_PASSWORD],
          ['the Kafka user name', KAFKA_USERNAME],
          ['the service token', SERVICE_TOKEN],
          ['a URL password', URL_PASSWORD],
          ['a URL query secret', QUERY_SECRET],
          ...[...tokens].map((token): [string, string] => ['an access token', token]),
          ...DECRYPT_FIXTURE.cases.map((vector): [string, string] => [`the decrypted ${vector.path}`, vector.plaintext]),
          // JSON-escaped spellings of the decrypted values, as a log line would hold them.
          ...DECRYPT_FIXTURE.cases.map((vector): [string, string] => [`the decrypted ${vector.path} (escaped)`, JSON.stringify(vector.plaintext).slice(1, -1)]),
          ...DECRYPT_FIXTURE.cases.map((vector): [string, string] => [`the decrypted ${vector.path} (percent-encoded)`, encodeURIComponent(vector.plaintext)]),
        ];
        const leaks: string[] = [];
        for (const [what, secret] of secrets) {
          for (const line of lines) if (line.includes(secret)) leaks.push(`${what} in: ${line.slice(0, 400)}`);
        }
        assert.deepEqual(leaks, []);
        assert.ok(lines.length > 50, `a full scenario was logged (${lines.length} lines)`);
      });
    });
  }
});
