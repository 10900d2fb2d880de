/**
 * Every environment variable the agent reads (SPEC §1), with its default and format. Names are the
 * official agent's; variables for improvements follow the same style and are documented in the
 * README and the Helm chart.
 */
import type { Schema } from 'convict';
import { choiceFormat } from './formats.js';

export const STREAMER_NAMES = ['KAFKA', 'POLLING'] as const;
export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const AUTHENTICATION_MECHANISMS = ['NONE', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export const OFFSET_RESETS = ['earliest', 'latest'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const MAPPING_DIALECTS = ['jsonata', 'jq'] as const;
export const RUN_LOGS_MODES = ['all', 'minimal', 'none'] as const;
/** `auto` (or empty, or unset): the mapping file's own dialect is detected at start. */
export const MAPPING_DIALECT_SETTINGS = ['auto', ...MAPPING_DIALECTS] as const;

const streamerNameFormat = choiceFormat('streamer-name', STREAMER_NAMES);
const securityProtocolFormat = choiceFormat('security-protocol', SECURITY_PROTOCOLS);
const authenticationMechanismFormat = choiceFormat('authentication-mechanism', AUTHENTICATION_MECHANISMS);
// SPEC §1: librdkafka's spellings are accepted too.
const offsetResetFormat = choiceFormat('offset-reset', OFFSET_RESETS, {
  smallest: 'earliest',
  beginning: 'earliest',
  largest: 'latest',
  end: 'latest',
});
// Python's level names, as the official agent takes them.
const dialectFormat = choiceFormat('mapping-dialect', MAPPING_DIALECT_SETTINGS, { '': 'auto' });
const runLogsFormat = choiceFormat('run-logs', RUN_LOGS_MODES);
const logLevelFormat = choiceFormat('log-level', LOG_LEVELS, { warning: 'warn', critical: 'fatal', notset: 'trace' });

/** The choice formats the schema names; registered with convict beside AGENT_FORMATS. */
export const CHOICE_FORMATS = [
  streamerNameFormat,
  securityProtocolFormat,
  authenticationMechanismFormat,
  offsetResetFormat,
  logLevelFormat,
  dialectFormat,
  runLogsFormat,
];

export interface RawConfig {
  port: { orgId: string; clientId: string; clientSecret: string; apiBaseUrl: string };
  streamerName: (typeof STREAMER_NAMES)[number];
  kafka: {
    groupId: string;
    runsTopic: string;
    changeLogTopic: string;
    securityProtocol: (typeof SECURITY_PROTOCOLS)[number];
    authenticationMechanism: (typeof AUTHENTICATION_MECHANISMS)[number];
    sessionTimeoutMs: number;
    autoOffsetReset: (typeof OFFSET_RESETS)[number];
    useLocalPortInstance: boolean;
    bootstrapServers: string;
    fetchMaxWaitMs: number;
  };
  mapping: { path: string; dialect: (typeof MAPPING_DIALECT_SETTINGS)[number]; skipUnmatchedNodeRuns: boolean };
  webhook: { timeoutSeconds: number; verifySsl: boolean; maxInFlightPerHost: number; maxRetries: number; retryMaxTimeSeconds: number; allowedHosts: string };
  maxMessageAgeSeconds: number;
  maxMessageBytes: number;
  network: {
    httpProxy: string;
    httpProxyLower: string;
    httpsProxy: string;
    httpsProxyLower: string;
    allProxy: string;
    allProxyLower: string;
    noProxy: string;
    noProxyLower: string;
    nodeExtraCaCerts: string;
    requestsCaBundle: string;
    sslCertFile: string;
    sslCertDir: string;
    caDirectories: string;
  };
  maxInFlight: number;
  maxPendingReports: number;
  portApiMaxCallsPerSecond: number;
  runLogs: (typeof RUN_LOGS_MODES)[number];
  detailedLogging: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  shutdownGraceSeconds: number;
  healthPort: number;
  polling: {
    intervalSeconds: number;
    runsBatchSize: number;
    initialBackoffSeconds: number;
    backoffFactor: number;
    maxBackoffSeconds: number;
    backoffJitterFactor: number;
    maxFailureDurationSeconds: number;
  };
}

export const DEFAULT_MAPPING_PATH = './control_the_payload_config.json';
/** The folders the official agent's image trusts (it runs update-ca-certificates over them). */
export const DEFAULT_CA_DIRECTORIES = ['/usr/local/share/ca-certificates', '/usr/share/ca-certificates', '/etc/ssl/certs'] as const;

export const CONFIG_SCHEMA: Schema<RawConfig> = {
  port: {
    orgId: { doc: 'Port organization id; topics and the default group derive from it', format: 'required-string', default: '', env: 'PORT_ORG_ID' },
    clientId: { doc: 'Port API client id', format: 'required-string', default: '', env: 'PORT_CLIENT_ID', sensitive: true },
    clientSecret: {
      doc: 'Port API client secret; also the HMAC key of signatures and the AES key source',
      format: 'required-string',
      default: '',
      env: 'PORT_CLIENT_SECRET',
      sensitive: true,
    },
    apiBaseUrl: { doc: 'Port API base URL', format: 'http-url', default: 'https://api.getport.io', env: 'PORT_API_BASE_URL' },
  },
  streamerName: { doc: 'KAFKA or POLLING', format: streamerNameFormat.name, default: 'KAFKA', env: 'STREAMER_NAME' },
  kafka: {
    groupId: { doc: 'Consumer group; PORT_ORG_ID when empty', format: 'optional-string', default: '', env: 'KAFKA_CONSUMER_GROUP_ID' },
    runsTopic: { doc: 'Topic of action runs and workflow node runs; <PORT_ORG_ID>.runs when empty', format: 'optional-string', default: '', env: 'KAFKA_RUNS_TOPIC' },
    changeLogTopic: {
      doc: 'Topic of change-log events; <PORT_ORG_ID>.change.log when empty',
      format: 'optional-string',
      default: '',
      env: 'KAFKA_CHANGE_LOG_TOPIC',
    },
    securityProtocol: {
      doc: 'PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL',
      format: securityProtocolFormat.name,
      default: 'PLAINTEXT',
      env: 'KAFKA_CONSUMER_SECURITY_PROTOCOL',
    },
    authenticationMechanism: {
      doc: 'none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512',
      format: authenticationMechanismFormat.name,
      default: 'NONE',
      env: 'KAFKA_CONSUMER_AUTHENTICATION_MECHANISM',
    },
    sessionTimeoutMs: { doc: 'Consumer group session timeout', format: 'positive-integer', default: 45000, env: 'KAFKA_CONSUMER_SESSION_TIMEOUT_MS' },
    autoOffsetReset: {
      doc: 'Where a group without a committed offset starts',
      format: offsetResetFormat.name,
      default: 'earliest',
      env: 'KAFKA_CONSUMER_AUTO_OFFSET_RESET',
    },
    useLocalPortInstance: {
      doc: 'Use KAFKA_CONSUMER_BOOTSTRAP_SERVERS instead of credentials fetched from Port',
      format: 'agent-boolean',
      default: false,
      env: 'USING_LOCAL_PORT_INSTANCE',
    },
    bootstrapServers: { doc: 'Comma-separated brokers (local instance only)', format: 'optional-string', default: '', env: 'KAFKA_CONSUMER_BOOTSTRAP_SERVERS' },
    fetchMaxWaitMs: {
      doc: 'Longest time a fetch waits for new messages',
      format: 'positive-integer',
      default: 500,
      env: 'KAFKA_CONSUMER_FETCH_MAX_WAIT_MS',
    },
  },
  mapping: {
    path: { doc: 'Payload mapping file', format: 'optional-string', default: DEFAULT_MAPPING_PATH, env: 'CONTROL_THE_PAYLOAD_CONFIG_PATH' },
    dialect: {
      doc: 'Language of the mapping expressions: jsonata, jq (files written for the official agent), or auto: detected from the file',
      format: dialectFormat.name,
      default: 'auto',
      env: 'CONTROL_THE_PAYLOAD_DIALECT',
    },
    skipUnmatchedNodeRuns: {
      doc: 'Skip workflow node runs no mapping matches silently instead of failing them',
      format: 'agent-boolean',
      default: false,
      env: 'AGENT_SKIP_UNMATCHED_NODE_RUNS',
    },
  },
  webhook: {
    timeoutSeconds: { doc: 'Timeout of one request to an internal service', format: 'positive-number', default: 30, env: 'WEBHOOK_INVOKER_TIMEOUT' },
    verifySsl: { doc: 'Verify TLS certificates of internal services', format: 'agent-boolean', default: true, env: 'WEBHOOK_VERIFY_SSL' },
    maxInFlightPerHost: {
      doc: 'Requests to one host (host:port) at once, so a slow service cannot take every slot',
      format: 'positive-integer',
      default: 50,
      env: 'WEBHOOK_MAX_IN_FLIGHT_PER_HOST',
    },
    maxRetries: {
      doc: 'Retries of a request after connection errors, timeouts, 429 and 5xx (0: none)',
      format: 'non-negative-integer',
      default: 5,
      env: 'WEBHOOK_MAX_RETRIES',
    },
    retryMaxTimeSeconds: {
      doc: 'No retry of a request starts later than this after its first attempt',
      format: 'positive-number',
      default: 60,
      env: 'WEBHOOK_RETRY_MAX_TIME_SECONDS',
    },
    allowedHosts: {
      doc: 'Comma-separated hosts (svc.internal, *.corp.internal, host:port) or URL prefixes (https://api.internal/hooks) runs may be sent to; empty: any',
      format: 'optional-string',
      default: '',
      env: 'WEBHOOK_ALLOWED_HOSTS',
    },
  },
  maxMessageAgeSeconds: {
    doc: 'Drop runs-topic messages whose X-Port-Timestamp is older than this (replay window); 0: off',
    format: 'non-negative-number',
    default: 0,
    env: 'AGENT_MAX_MESSAGE_AGE_SECONDS',
  },
  maxMessageBytes: {
    doc: 'Messages larger than this are refused unread (FAILURE when a run id shows); Kafka\'s own default limit is 1 MB',
    format: 'positive-integer',
    default: 1_048_576,
    env: 'AGENT_MAX_MESSAGE_BYTES',
  },
  // SPEC §1: the standard proxy and CA variables, in both cases where tools use both. Proxy URLs
  // may carry a password, so they are never printed.
  network: {
    httpProxy: { doc: 'Proxy for http:// requests', format: 'optional-string', default: '', env: 'HTTP_PROXY', sensitive: true },
    httpProxyLower: { doc: 'Proxy for http:// requests (wins over HTTP_PROXY)', format: 'optional-string', default: '', env: 'http_proxy', sensitive: true },
    httpsProxy: { doc: 'Proxy for https:// requests (CONNECT)', format: 'optional-string', default: '', env: 'HTTPS_PROXY', sensitive: true },
    httpsProxyLower: { doc: 'Proxy for https:// requests (wins over HTTPS_PROXY)', format: 'optional-string', default: '', env: 'https_proxy', sensitive: true },
    allProxy: { doc: 'Proxy for requests of any scheme no scheme-specific proxy covers', format: 'optional-string', default: '', env: 'ALL_PROXY', sensitive: true },
    allProxyLower: { doc: 'Proxy for requests no scheme-specific proxy covers (wins over ALL_PROXY)', format: 'optional-string', default: '', env: 'all_proxy', sensitive: true },
    noProxy: { doc: 'Hosts reached without the proxy', format: 'optional-string', default: '', env: 'NO_PROXY' },
    noProxyLower: { doc: 'Hosts reached without the proxy (wins over NO_PROXY)', format: 'optional-string', default: '', env: 'no_proxy' },
    nodeExtraCaCerts: { doc: 'PEM file of extra trusted CAs (read by Node.js itself too)', format: 'optional-string', default: '', env: 'NODE_EXTRA_CA_CERTS' },
    requestsCaBundle: { doc: 'PEM file of extra trusted CAs (the official agent\'s variable)', format: 'optional-string', default: '', env: 'REQUESTS_CA_BUNDLE' },
    sslCertFile: { doc: 'PEM file of extra trusted CAs (OpenSSL\'s variable)', format: 'optional-string', default: '', env: 'SSL_CERT_FILE' },
    sslCertDir: {
      doc: 'Colon-separated folders whose *.crt and *.pem files are trusted, without subfolders (OpenSSL\'s variable)',
      format: 'optional-string',
      default: '',
      env: 'SSL_CERT_DIR',
    },
    caDirectories: {
      doc: 'Comma-separated absolute folders whose *.crt and *.pem files, subfolders included, are trusted; missing ones are skipped; empty: none',
      format: 'optional-string',
      default: DEFAULT_CA_DIRECTORIES.join(','),
      env: 'AGENT_CA_DIRECTORIES',
    },
  },
  maxInFlight: {
    doc: 'Requests to internal services at once, across and within partitions',
    format: 'positive-integer',
    default: 100,
    env: 'AGENT_MAX_IN_FLIGHT',
  },
  maxPendingReports: {
    doc: 'Runs whose reports Port has not accepted yet; at the limit the agent stops fetching new runs until Port catches up',
    format: 'positive-integer',
    default: 1000,
    env: 'AGENT_MAX_PENDING_REPORTS',
  },
  portApiMaxCallsPerSecond: {
    doc: "The agent's share of Port's API budget, in calls a second; 0 lets Port's x-ratelimit headers decide alone",
    format: 'non-negative-number',
    default: 0,
    env: 'PORT_API_MAX_CALLS_PER_SECOND',
  },
  runLogs: {
    doc: 'Run-log lines written to Port: all (the official texts), minimal (one line per run), none',
    format: runLogsFormat.name,
    default: 'all',
    env: 'AGENT_RUN_LOGS',
  },
  detailedLogging: { doc: 'Bodies and response texts in logs and run logs', format: 'agent-boolean', default: true, env: 'DETAILED_LOGGING' },
  logLevel: {
    doc: 'DEBUG, INFO, WARNING, ERROR, CRITICAL (any case)',
    format: logLevelFormat.name,
    default: 'info',
    env: 'LOG_LEVEL',
  },
  shutdownGraceSeconds: {
    doc: 'On SIGTERM/SIGINT, how long in-flight runs may take to finish before the process exits',
    format: 'positive-number',
    default: 25,
    env: 'AGENT_SHUTDOWN_GRACE_SECONDS',
  },
  healthPort: {
    doc: 'Port of the health server: /healthz (liveness), /readyz (readiness), /metrics (Prometheus); 0 picks a free port',
    format: 'tcp-port',
    default: 8080,
    env: 'HEALTH_PORT',
  },
  polling: {
    intervalSeconds: { doc: 'Seconds between polls', format: 'positive-number', default: 10, env: 'POLLING_INTERVAL_SECONDS' },
    runsBatchSize: { doc: 'Runs claimed per poll', format: 'positive-integer', default: 100, env: 'POLLING_RUNS_BATCH_SIZE' },
    initialBackoffSeconds: { doc: 'First backoff after a failed poll', format: 'positive-number', default: 1, env: 'POLLING_INITIAL_BACKOFF_SECONDS' },
    backoffFactor: { doc: 'Backoff multiplier', format: 'positive-number', default: 2, env: 'POLLING_BACKOFF_FACTOR' },
    maxBackoffSeconds: { doc: 'Longest backoff', format: 'positive-number', default: 300, env: 'POLLING_MAX_BACKOFF_SECONDS' },
    backoffJitterFactor: { doc: 'Jitter as a fraction of the backoff', format: 'non-negative-number', default: 0.1, env: 'POLLING_BACKOFF_JITTER_FACTOR' },
    maxFailureDurationSeconds: {
      doc: 'Continuous failure after which the agent exits',
      format: 'positive-number',
      default: 3600,
      env: 'POLLING_MAX_FAILURE_DURATION_SECONDS',
    },
  },
};
