/**
 * `port-agent check-config` (issue 7): the built CLI validates the environment, a .env file and
 * the mapping file as the agent does at start, prints the effective configuration with every
 * secret masked, contacts nothing, and exits 0 or 2 with the agent's one-line error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { startAgent } from '../support/agent-process.js';
import { listenCountingConnections } from '../support/counting-listener.js';
import type { CountingListener } from '../support/counting-listener.js';
import { officialMappingFile } from '../support/official-cases.js';
import { folderWith } from '../support/temp-folder.js';
import { createTestCa } from '../support/test-ca.js';

/** check-config reads and exits; one still running after this has started the agent instead. */
const EXIT_WAIT_MS = 20_000;

const SECRETS = {
  PORT_CLIENT_ID: 'client-id-3f9a1c7e',
  PORT_CLIENT_SECRET: 'client-secret-must-never-be-printed-8c2d',
  // Not read by the agent today; if it ever is, check-config must still mask it.
  KAFKA_CONSUMER_PASSWORD: 'kafka-password-5e1b09',
  KAFKA_CONSUMER_USERNAME: 'kafka-username-77aa',
  HTTPS_PROXY: 'http://proxy-user:proxy-password-4d4d@127.0.0.1:3128',
  all_proxy: 'http://proxy-user:proxy-password-all-6e6e@127.0.0.1:3128',
};

interface CheckOutput {
  valid: boolean;
  variables: Record<string, { value: unknown; from: string }>;
  effective: Record<string, unknown>;
  mapping: { path: string; builtIn: boolean; dialect: string; dialectReason: string; mappings: number; decrypting: number[] };
  envFile: string | null;
  trustedCertificates: { bundled: number; added: number; sources: unknown[] };
  warnings: string[];
}

async function checkConfig(env: Record<string, string>, cwd?: string) {
  const agent = startAgent(env, { args: ['check-config'], ...(cwd === undefined ? {} : { cwd }) });
  const exit = await agent.exitWithin(EXIT_WAIT_MS);
  // The JSON is pretty-printed: the helper splits it into lines, kept raw when they are not objects.
  const stdout = agent.logs.map((line) => (typeof line.raw === 'string' ? line.raw : JSON.stringify(line))).join('\n');
  return { code: exit.code, stdout, stderr: agent.stderr(), json: () => JSON.parse(stdout) as CheckOutput };
}

function assertNoSecret(text: string): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(value), `${name} is not printed`);
  }
  assert.ok(!text.includes('proxy-password'), 'no part of the proxy password');
  assert.ok(!text.includes('proxy-user'), 'no part of the proxy credentials');
}

function assertConfigError(result: { code: number | null; stdout: string; stderr: string }, expected: RegExp): void {
  assert.equal(result.code, 2, `exit code 2 (stderr: ${result.stderr})`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  assert.match(lines[0] ?? '', expected);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(result.stdout, '', 'nothing on stdout');
  assertNoSecret(result.stderr);
}

function tempDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'check-config-'));
}

describe('port-agent check-config', () => {
  let port: CountingListener;
  let kafka: CountingListener;
  let valid: Record<string, string>;

  before(async () => {
    port = await listenCountingConnections();
    kafka = await listenCountingConnections();
    valid = {
      ...SECRETS,
      PORT_ORG_ID: 'org_check',
      PORT_API_BASE_URL: `http://${port.address}`,
      USING_LOCAL_PORT_INSTANCE: 'true',
      KAFKA_CONSUMER_BOOTSTRAP_SERVERS: kafka.address,
      WEBHOOK_INVOKER_TIMEOUT: '7.5',
      LOG_LEVEL: 'DEBUG',
      HEALTH_PORT: '0',
    };
  });

  after(() => {
    port.server.close();
    kafka.server.close();
  });

  it('prints every variable with its name, secrets masked, the derived values and the built-in mapping, and exits 0', async () => {
    const result = await checkConfig(valid);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const output = result.json();
    assert.equal(output.valid, true);
    assert.deepEqual(output.variables.PORT_CLIENT_SECRET, { value: '[set]', from: 'environment' });
    assert.deepEqual(output.variables.PORT_CLIENT_ID, { value: '[set]', from: 'environment' });
    assert.deepEqual(output.variables.HTTPS_PROXY, { value: '[set]', from: 'environment' });
    assert.deepEqual(output.variables.HTTP_PROXY, { value: '[not set]', from: 'default' });
    assert.deepEqual(output.variables.all_proxy, { value: '[set]', from: 'environment' });
    assert.deepEqual(output.variables.ALL_PROXY, { value: '[not set]', from: 'default' });
    assert.deepEqual(output.variables.PORT_ORG_ID, { value: 'org_check', from: 'environment' });
    assert.deepEqual(output.variables.WEBHOOK_INVOKER_TIMEOUT, { value: 7.5, from: 'environment' });
    assert.deepEqual(output.variables.LOG_LEVEL, { value: 'debug', from: 'environment' });
    assert.deepEqual(output.variables.WEBHOOK_VERIFY_SSL, { value: true, from: 'default' });
    assert.deepEqual(output.variables.KAFKA_RUNS_TOPIC, { value: '', from: 'default' });
    for (const [name, report] of Object.entries(output.variables)) {
      assert.ok(report.from === 'environment' || report.from === 'default', `${name} comes from the environment or a default`);
    }
    assert.deepEqual(output.effective, {
      orgId: 'org_check',
      groupId: 'org_check',
      runsTopic: 'org_check.runs',
      changeLogTopic: 'org_check.change.log',
      kafkaBrokers: [kafka.address],
      portApiBaseUrl: `http://${port.address}`,
    });
    assert.equal(output.mapping.builtIn, true);
    assert.match(output.mapping.path, /config\/default-mapping\.json$/);
    assert.equal(output.mapping.mappings, 2);
    assert.equal(output.mapping.dialect, 'jsonata');
    assert.equal(output.mapping.dialectReason, 'the built-in default mapping is written in JSONata');
    assert.deepEqual(output.mapping.decrypting, []);
    assert.equal(output.envFile, null);
    assertNoSecret(result.stdout + result.stderr);
    assert.equal(port.connections(), 0, 'the Port API is not contacted');
    assert.equal(kafka.connections(), 0, 'Kafka is not contacted');
  });

  it('reads a .env file and a mapping file in the working directory, the real environment winning', async () => {
    const directory = tempDirectory();
    writeFileSync(
      join(directory, '.env'),
      `PORT_CLIENT_SECRET=${SECRETS.PORT_CLIENT_SECRET}\nPORT_ORG_ID=org_from_dotenv\nKAFKA_CONSUMER_GROUP_ID=group-from-dotenv\nWEBHOOK_MAX_RETRIES=9\nCONTROL_THE_PAYLOAD_DIALECT=jq\n`,
    );
    writeFileSync(
      join(directory, 'control_the_payload_config.json'),
      JSON.stringify([{ enabled: '.payload.action.identifier == "a"', url: '"http://a.internal"' }, { enabled: true, fieldsToDecryptPaths: ['payload.properties.secret'] }]),
    );
    const env: Record<string, string> = { ...valid, WEBHOOK_MAX_RETRIES: '2' };
    delete env.PORT_CLIENT_SECRET;
    delete env.PORT_ORG_ID;
    const result = await checkConfig(env, directory);
    assert.equal(result.code, 0, result.stderr);
    const output = result.json();
    assert.deepEqual(output.variables.PORT_CLIENT_SECRET, { value: '[set]', from: '.env' });
    assert.deepEqual(output.variables.PORT_ORG_ID, { value: 'org_from_dotenv', from: '.env' });
    assert.deepEqual(output.variables.WEBHOOK_MAX_RETRIES, { value: 2, from: 'environment' }, 'the real environment wins');
    assert.equal(output.effective.groupId, 'group-from-dotenv');
    assert.equal(output.effective.runsTopic, 'org_from_dotenv.runs');
    assert.deepEqual(output.mapping, { path: join(directory, 'control_the_payload_config.json'), builtIn: false, dialect: 'jq', dialectReason: 'CONTROL_THE_PAYLOAD_DIALECT=jq', mappings: 2, decrypting: [1] });
    assert.equal(output.envFile, join(directory, '.env'));
    assertNoSecret(result.stdout + result.stderr);
  });

  it('exits 2 with the agent\'s line for a missing variable', async () => {
    const env: Record<string, string> = { ...valid };
    delete env.PORT_ORG_ID;
    assertConfigError(await checkConfig(env), /^port-agent: Invalid configuration: PORT_ORG_ID is required/);
  });

  it('exits 2 with the agent\'s line for an invalid value, naming the variable and the value', async () => {
    assertConfigError(
      await checkConfig({ ...valid, WEBHOOK_INVOKER_TIMEOUT: 'ten' }),
      /^port-agent: Invalid configuration: WEBHOOK_INVOKER_TIMEOUT must be a number greater than 0 \(got "ten"\)$/,
    );
  });

  it('exits 2 without printing an invalid secret value', async () => {
    const result = await checkConfig({ ...valid, HTTPS_PROXY: 'not a url proxy-password-4d4d' });
    assertConfigError(result, /^port-agent: Invalid configuration: HTTPS_PROXY must be an http:\/\/ or https:\/\/ proxy URL$/);
  });

  it('exits 2 for a mapping file that is missing, not JSON, or does not compile (both dialects)', async () => {
    const directory = tempDirectory();
    const path = (name: string, content: string): string => {
      const file = join(directory, name);
      writeFileSync(file, content);
      return file;
    };
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_CONFIG_PATH: join(directory, 'missing.json') }),
      /^port-agent: Invalid configuration: CONTROL_THE_PAYLOAD_CONFIG_PATH cannot read the payload mapping file .*missing\.json \(ENOENT\)$/,
    );
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_CONFIG_PATH: path('broken.json', '[{"enabled": true,') }),
      /^port-agent: Invalid configuration: the payload mapping file .*broken\.json is not valid JSON: /,
    );
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_DIALECT: 'jsonata', CONTROL_THE_PAYLOAD_CONFIG_PATH: path('jsonata.json', JSON.stringify([{ url: '"http://x" &' }])) }),
      /^port-agent: Mapping 0, field "url": the jsonata expression "\\"http:\/\/x\\" &" does not compile/,
    );
    // No dialect set: the first failure in each dialect is named.
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_CONFIG_PATH: path('neither.json', JSON.stringify([{ enabled: true, url: '"http://x"' }, { url: '"http://x" &' }])) }),
      /^port-agent: The payload mapping fits neither dialect \(CONTROL_THE_PAYLOAD_DIALECT is not set\)\. As JSONata: Mapping 1, field "url": the jsonata expression "\\"http:\/\/x\\" &" does not compile: .*\. As jq: Mapping 1, field "url": the jq expression "\\"http:\/\/x\\" &" does not compile: /,
    );
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_DIALECT: 'jq', CONTROL_THE_PAYLOAD_CONFIG_PATH: path('jq.json', JSON.stringify([{ enabled: true }, { body: { a: '.payload | map(' } }])) }),
      /^port-agent: Mapping 1, field "body\.a": the jq expression "\.payload \| map\(" does not compile/,
    );
    // The official agent's test file runs in the agent (that expression yields null) but is refused here.
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_CONFIG_PATH: path('official-test.json', JSON.stringify(officialMappingFile('mock_control_the_payload_config'))) }),
      /^port-agent: Mapping 0, field "enabled": the jq expression "\.payload\.non-existing-field" does not compile: /,
    );
    assertConfigError(
      await checkConfig({ ...valid, CONTROL_THE_PAYLOAD_CONFIG_PATH: path('unknown.json', JSON.stringify([{ reprot: {} }])) }),
      /^port-agent: Mapping 0, field "reprot": unknown field/,
    );
  });

  it('exits 2 when a mapping decrypts fields and the client secret is too short for a key', async () => {
    const directory = tempDirectory();
    const file = join(directory, 'decrypt.json');
    writeFileSync(file, JSON.stringify([{ fieldsToDecryptPaths: ['payload.properties.password'] }]));
    const result = await checkConfig({ ...valid, PORT_CLIENT_SECRET: 'short-secret-1234', CONTROL_THE_PAYLOAD_CONFIG_PATH: file });
    assertConfigError(result, /^port-agent: Invalid configuration: PORT_CLIENT_SECRET is shorter than the 32 bytes of an AES-256 key, and mapping 0 asks to decrypt fields/);
    assert.ok(!result.stderr.includes('short-secret-1234'));
  });

  it('says which brokers it would use: fetched from Port, or none when polling', async () => {
    const env: Record<string, string> = { ...valid };
    delete env.USING_LOCAL_PORT_INSTANCE;
    delete env.KAFKA_CONSUMER_BOOTSTRAP_SERVERS;
    const hosted = await checkConfig(env);
    assert.equal(hosted.code, 0, hosted.stderr);
    assert.equal(hosted.json().effective.kafkaBrokers, 'fetched from the Port API at start (GET /v1/kafka-credentials)');
    const polling = await checkConfig({ ...env, STREAMER_NAME: 'POLLING' });
    assert.equal(polling.code, 0, polling.stderr);
    assert.equal(polling.json().effective.kafkaBrokers, 'not used (STREAMER_NAME=POLLING)');
    assert.equal(port.connections(), 0, 'the Port API is not contacted');
  });

  it('counts the CAs of a CA folder, and warns about a broken file there without failing', async () => {
    const folder = folderWith({ 'corp.crt': createTestCa().caPem, 'broken.pem': 'no certificate here' });
    const result = await checkConfig({ ...valid, AGENT_CA_DIRECTORIES: folder });
    assert.equal(result.code, 0, result.stderr);
    const output = result.json();
    assert.deepEqual(output.trustedCertificates, {
      bundled: rootCertificates.length,
      added: 1,
      sources: [{ variable: 'AGENT_CA_DIRECTORIES', path: folder, exists: true, certificates: 1, added: 1 }],
    });
    assert.equal(output.warnings.length, 1);
    assert.match(output.warnings[0] ?? '', /^certificate file skipped: .*broken\.pem: no PEM certificate/);
    assert.equal(result.stderr, `port-agent: warning: ${output.warnings[0] ?? ''}\n`);
  });

  it('exits 2 naming SSL_CERT_FILE when it names a file without a certificate', async () => {
    const directory = tempDirectory();
    const path = join(directory, 'bundle.pem');
    writeFileSync(path, 'no certificate here');
    assertConfigError(await checkConfig({ ...valid, SSL_CERT_FILE: path }), /^port-agent: Invalid configuration: SSL_CERT_FILE names a file without a PEM certificate \(.*bundle\.pem\)$/);
  });

  it('prints its usage for --help', async () => {
    const agent = startAgent({}, { args: ['check-config', '--help'] });
    assert.equal((await agent.exitWithin(EXIT_WAIT_MS)).code, 0);
    assert.match(agent.logs.map((line) => line.raw).join('\n'), /^usage: port-agent check-config/);
  });

  it('exits 2 with its usage for an unknown option', async () => {
    const agent = startAgent(valid, { args: ['check-config', '--verbose'] });
    const exit = await agent.exitWithin(EXIT_WAIT_MS);
    assert.equal(exit.code, 2);
    assert.match(agent.stderr(), /^port-agent check-config: .*--verbose/);
    assert.match(agent.stderr(), /usage: port-agent check-config/);
  });
});
