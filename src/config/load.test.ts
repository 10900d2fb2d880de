import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { withEnvFile } from './env-file.js';
import { expressionEnvironment, loadConfig } from './load.js';

const REQUIRED = { PORT_ORG_ID: 'org_1', PORT_CLIENT_ID: 'client-id', PORT_CLIENT_SECRET: 'client-secret-value' };
const LOCAL = { ...REQUIRED, USING_LOCAL_PORT_INSTANCE: 'true', KAFKA_CONSUMER_BOOTSTRAP_SERVERS: 'localhost:9092' };

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('loadConfig', () => {
  it('applies the official defaults and derives topics and group from the org id', () => {
    const config = loadConfig(REQUIRED);
    assert.equal(config.port.apiBaseUrl, 'https://api.getport.io');
    assert.equal(config.streamerName, 'KAFKA');
    assert.equal(config.kafka.groupId, 'org_1');
    assert.equal(config.kafka.runsTopic, 'org_1.runs');
    assert.equal(config.kafka.changeLogTopic, 'org_1.change.log');
    assert.equal(config.kafka.securityProtocol, 'PLAINTEXT');
    assert.equal(config.kafka.authenticationMechanism, 'NONE');
    assert.equal(config.kafka.sessionTimeoutMs, 45000);
    assert.equal(config.kafka.autoOffsetReset, 'earliest');
    assert.equal(config.kafka.useLocalPortInstance, false);
    assert.deepEqual(config.mapping, { path: './control_the_payload_config.json', isExplicit: false, dialect: undefined, skipUnmatchedNodeRuns: false });
    assert.equal(config.webhook.timeoutMs, 30000);
    assert.equal(config.webhook.verifySsl, true);
    assert.equal(config.detailedLogging, true);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.polling.intervalSeconds, 10);
    assert.equal(config.polling.runsBatchSize, 100);
    assert.equal(config.polling.maxFailureDurationSeconds, 3600);
    assert.equal(config.healthPort, 8080);
    assert.deepEqual(config.webhook.allowedTargets, []);
    assert.equal(config.maxMessageAgeMs, undefined);
    assert.deepEqual(config.network, {
      httpProxy: undefined,
      httpsProxy: undefined,
      allProxy: undefined,
      noProxy: '',
      caSources: { files: [], sslCertDirectories: [], directories: ['/usr/local/share/ca-certificates', '/usr/share/ca-certificates', '/etc/ssl/certs'] },
    });
  });

  it('reads the allow-list, the replay window, proxies (lower case first), CA files and CA folders', () => {
    const config = loadConfig({
      ...REQUIRED,
      WEBHOOK_ALLOWED_HOSTS: ' deploy.internal , *.corp.internal,https://api.internal/hooks ',
      AGENT_MAX_MESSAGE_AGE_SECONDS: '300',
      HTTPS_PROXY: 'http://upper.proxy:3128',
      https_proxy: 'http://lower.proxy:3128',
      HTTP_PROXY: 'http://plain.proxy:3128',
      ALL_PROXY: 'http://upper-all.proxy:3128',
      all_proxy: 'http://lower-all.proxy:3128',
      NO_PROXY: '.svc,localhost',
      NODE_EXTRA_CA_CERTS: '/etc/ca/extra.pem',
      REQUESTS_CA_BUNDLE: '/etc/ca/bundle.pem',
      SSL_CERT_FILE: ' /etc/ca/openssl.pem ',
      SSL_CERT_DIR: '/etc/ca/dir-a::/etc/ca/dir-b',
      AGENT_CA_DIRECTORIES: '/mnt/corp-cas, /usr/local/share/ca-certificates',
    });
    assert.deepEqual(config.webhook.allowedTargets, ['deploy.internal', '*.corp.internal', 'https://api.internal/hooks']);
    assert.equal(config.maxMessageAgeMs, 300_000);
    assert.deepEqual(config.network, {
      httpProxy: 'http://plain.proxy:3128',
      httpsProxy: 'http://lower.proxy:3128',
      allProxy: 'http://lower-all.proxy:3128',
      noProxy: '.svc,localhost',
      caSources: {
        files: [
          { variable: 'SSL_CERT_FILE', path: '/etc/ca/openssl.pem' },
          { variable: 'REQUESTS_CA_BUNDLE', path: '/etc/ca/bundle.pem' },
          { variable: 'NODE_EXTRA_CA_CERTS', path: '/etc/ca/extra.pem' },
        ],
        sslCertDirectories: ['/etc/ca/dir-a', '/etc/ca/dir-b'],
        directories: ['/mnt/corp-cas', '/usr/local/share/ca-certificates'],
      },
    });
  });

  it('reads an empty AGENT_CA_DIRECTORIES as no folder, and refuses relative folders', () => {
    assert.deepEqual(loadConfig({ ...REQUIRED, AGENT_CA_DIRECTORIES: '' }).network.caSources.directories, []);
    assert.deepEqual(loadConfig({ ...REQUIRED, AGENT_CA_DIRECTORIES: ' , ' }).network.caSources.directories, []);
    const error = configError({ ...REQUIRED, AGENT_CA_DIRECTORIES: '/etc/ssl/certs,certs,./more' });
    assert.equal(error.variable, 'AGENT_CA_DIRECTORIES');
    assert.equal(error.message, 'Invalid configuration: AGENT_CA_DIRECTORIES must list absolute folder paths, comma-separated (got "certs", "./more")');
  });

  it('never prints a proxy URL, which may hold a password', () => {
    const error = configError({ ...REQUIRED, HTTP_PROXY: 'not a url with s3cr3t' });
    assert.doesNotMatch(error.message, /s3cr3t/);
    const allProxy = configError({ ...REQUIRED, ALL_PROXY: 'socks5://user:s3cr3t@proxy:1080' });
    assert.equal(allProxy.message, 'Invalid configuration: ALL_PROXY must be an http:// or https:// proxy URL');
  });

  it('keeps explicit topics and group, and an empty group falls back to the org id', () => {
    const config = loadConfig({ ...REQUIRED, KAFKA_RUNS_TOPIC: 'r', KAFKA_CHANGE_LOG_TOPIC: 'c', KAFKA_CONSUMER_GROUP_ID: 'org_1.agent-a' });
    assert.equal(config.kafka.runsTopic, 'r');
    assert.equal(config.kafka.changeLogTopic, 'c');
    assert.equal(config.kafka.groupId, 'org_1.agent-a');
    assert.equal(loadConfig({ ...REQUIRED, KAFKA_CONSUMER_GROUP_ID: '' }).kafka.groupId, 'org_1');
  });

  it('accepts every boolean spelling in any case', () => {
    for (const spelling of ['true', 'TRUE', '1', 'yes', 'On', 't', 'Y']) {
      assert.equal(loadConfig({ ...REQUIRED, WEBHOOK_VERIFY_SSL: spelling }).webhook.verifySsl, true, spelling);
    }
    for (const spelling of ['false', 'False', '0', 'no', 'OFF', 'f', 'n']) {
      assert.equal(loadConfig({ ...REQUIRED, DETAILED_LOGGING: spelling }).detailedLogging, false, spelling);
    }
  });

  it('normalises case-insensitive choices and librdkafka offset spellings', () => {
    const config = loadConfig({
      ...REQUIRED,
      KAFKA_CONSUMER_SECURITY_PROTOCOL: 'sasl_ssl',
      KAFKA_CONSUMER_AUTHENTICATION_MECHANISM: 'scram-sha-512',
      LOG_LEVEL: 'Warning',
      STREAMER_NAME: 'polling',
    });
    assert.equal(config.kafka.securityProtocol, 'SASL_SSL');
    assert.equal(config.kafka.authenticationMechanism, 'SCRAM-SHA-512');
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.streamerName, 'POLLING');
    for (const [spelling, expected] of [['smallest', 'earliest'], ['beginning', 'earliest'], ['largest', 'latest'], ['END', 'latest'], ['latest', 'latest']]) {
      assert.equal(loadConfig({ ...REQUIRED, KAFKA_CONSUMER_AUTO_OFFSET_RESET: spelling as string }).kafka.autoOffsetReset, expected);
    }
  });

  it('takes fractional webhook timeouts in seconds', () => {
    assert.equal(loadConfig({ ...REQUIRED, WEBHOOK_INVOKER_TIMEOUT: '2.5' }).webhook.timeoutMs, 2500);
  });

  it('uses the bootstrap servers of a local instance', () => {
    const config = loadConfig({ ...LOCAL, KAFKA_CONSUMER_BOOTSTRAP_SERVERS: 'a:1, b:2' });
    assert.equal(config.kafka.useLocalPortInstance, true);
    assert.deepEqual(config.kafka.bootstrapServers, ['a:1', 'b:2']);
  });

  it('marks an explicit mapping path', () => {
    assert.deepEqual(loadConfig({ ...REQUIRED, CONTROL_THE_PAYLOAD_CONFIG_PATH: '/etc/m.json', CONTROL_THE_PAYLOAD_DIALECT: 'JQ' }).mapping, {
      path: '/etc/m.json',
      dialect: 'jq',
      skipUnmatchedNodeRuns: false,
      isExplicit: true,
    });
  });

  it('leaves the dialect to detection when CONTROL_THE_PAYLOAD_DIALECT is unset, empty or auto', () => {
    for (const setting of [undefined, '', ' ', 'auto', 'AUTO']) {
      const env = setting === undefined ? REQUIRED : { ...REQUIRED, CONTROL_THE_PAYLOAD_DIALECT: setting };
      assert.equal(loadConfig(env).mapping.dialect, undefined, `CONTROL_THE_PAYLOAD_DIALECT=${String(setting)}`);
    }
    assert.equal(loadConfig({ ...REQUIRED, CONTROL_THE_PAYLOAD_DIALECT: 'JSONata' }).mapping.dialect, 'jsonata');
    assert.throws(() => loadConfig({ ...REQUIRED, CONTROL_THE_PAYLOAD_DIALECT: 'yaml' }), /CONTROL_THE_PAYLOAD_DIALECT.*must be one of auto, jsonata, jq/);
  });

  for (const variable of Object.keys(REQUIRED)) {
    it(`rejects a missing ${variable} naming it`, () => {
      const env: Record<string, string> = { ...REQUIRED };
      delete env[variable];
      const error = configError(env);
      assert.equal(error.variable, variable);
      assert.match(error.message, new RegExp(`${variable} is required`));
      assert.doesNotMatch(error.message, /\n/);
    });
  }

  const invalid: [string, string, RegExp][] = [
    ['WEBHOOK_INVOKER_TIMEOUT', 'soon', /WEBHOOK_INVOKER_TIMEOUT must be a number greater than 0 \(got "soon"\)/],
    ['WEBHOOK_INVOKER_TIMEOUT', '-1', /WEBHOOK_INVOKER_TIMEOUT must be a number greater than 0/],
    ['WEBHOOK_VERIFY_SSL', 'maybe', /WEBHOOK_VERIFY_SSL must be one of true\/false/],
    ['STREAMER_NAME', 'RABBIT', /STREAMER_NAME must be one of kafka, polling/],
    ['KAFKA_CONSUMER_AUTO_OFFSET_RESET', 'middle', /KAFKA_CONSUMER_AUTO_OFFSET_RESET must be one of/],
    ['KAFKA_CONSUMER_SECURITY_PROTOCOL', 'TLS', /KAFKA_CONSUMER_SECURITY_PROTOCOL must be one of/],
    ['KAFKA_CONSUMER_SESSION_TIMEOUT_MS', '4.5', /KAFKA_CONSUMER_SESSION_TIMEOUT_MS must be a whole number/],
    ['PORT_API_BASE_URL', 'ftp://api', /PORT_API_BASE_URL must be an http:\/\/ or https:\/\/ URL/],
    ['LOG_LEVEL', 'LOUD', /LOG_LEVEL must be one of/],
    ['HEALTH_PORT', '70000', /HEALTH_PORT must be a TCP port/],
    ['WEBHOOK_ALLOWED_HOSTS', 'ok.internal, ftp://files', /WEBHOOK_ALLOWED_HOSTS must list hosts .* \(got "ftp:\/\/files"\)/],
    ['AGENT_MAX_MESSAGE_AGE_SECONDS', '-1', /AGENT_MAX_MESSAGE_AGE_SECONDS must be a number, 0 or more/],
    ['HTTPS_PROXY', 'socks5://user:pw@proxy:1080', /^Invalid configuration: HTTPS_PROXY must be an http:\/\/ or https:\/\/ proxy URL$/],
    ['HEALTH_PORT', 'http', /HEALTH_PORT must be a TCP port/],
    ['USING_LOCAL_PORT_INSTANCE', 'true', /KAFKA_CONSUMER_BOOTSTRAP_SERVERS is required when USING_LOCAL_PORT_INSTANCE=true/],
    ['KAFKA_CONSUMER_BOOTSTRAP_SERVERS', 'localhost:9092', /KAFKA_CONSUMER_BOOTSTRAP_SERVERS is only used with USING_LOCAL_PORT_INSTANCE=true/],
  ];
  for (const [variable, value, expected] of invalid) {
    it(`rejects ${variable}=${value} with one line naming it`, () => {
      const error = configError({ ...REQUIRED, [variable]: value });
      assert.match(error.message, expected);
      assert.equal(error.variable, variable === 'USING_LOCAL_PORT_INSTANCE' ? 'KAFKA_CONSUMER_BOOTSTRAP_SERVERS' : variable);
      assert.doesNotMatch(error.message, /\n/);
    });
  }

  it('rejects a malformed bootstrap server list', () => {
    assert.match(configError({ ...LOCAL, KAFKA_CONSUMER_BOOTSTRAP_SERVERS: 'localhost' }).message, /host:port/);
  });

  it('never prints a secret value in its error', () => {
    const error = configError({ ...REQUIRED, PORT_CLIENT_SECRET: 'super-secret-value', STREAMER_NAME: 'nope' });
    assert.doesNotMatch(error.message, /super-secret-value/);
  });
});

describe('withEnvFile', () => {
  it('reads .env from the directory and lets the real environment win', () => {
    const directory = mkdtempSync(join(tmpdir(), 'env-file-'));
    writeFileSync(join(directory, '.env'), 'PORT_ORG_ID=from-file\nLOG_LEVEL=DEBUG\n');
    const env = withEnvFile({ LOG_LEVEL: 'ERROR' }, directory);
    assert.equal(env.PORT_ORG_ID, 'from-file');
    assert.equal(env.LOG_LEVEL, 'ERROR');
  });

  it('is a no-op without a .env file', () => {
    const directory = mkdtempSync(join(tmpdir(), 'env-file-'));
    assert.deepEqual(withEnvFile({ A: 'b' }, directory), { A: 'b' });
  });
});

describe('expressionEnvironment', () => {
  it('hides the agent secrets and keeps everything else', () => {
    const visible = expressionEnvironment({ PORT_CLIENT_SECRET: 's', PORT_CLIENT_ID: 'i', GITLAB_URL: 'https://g/', group_project: 'tok' });
    assert.deepEqual({ ...visible }, { GITLAB_URL: 'https://g/', group_project: 'tok' });
  });
});
