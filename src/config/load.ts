/**
 * Turns an environment into a validated, typed Config, or one ConfigError whose message names
 * every variable that is wrong and what is expected. Pure: the caller passes the environment.
 */
import { isAbsolute } from 'node:path';
import convict from 'convict';
import { ConfigError } from '../errors.js';
import type { CaSources } from '../trust/trusted-cas.js';
import { invalidTargetEntries } from './allowed-targets.js';
import { AGENT_FORMATS } from './formats.js';
import { CHOICE_FORMATS, CONFIG_SCHEMA } from './schema.js';
import type { MAPPING_DIALECTS, RawConfig, RUN_LOGS_MODES } from './schema.js';

export type Environment = Readonly<Record<string, string | undefined>>;

export interface Config {
  port: RawConfig['port'];
  streamerName: RawConfig['streamerName'];
  kafka: Omit<RawConfig['kafka'], 'bootstrapServers'> & { bootstrapServers: string[] };
  /**
   * `isExplicit`: the path came from CONTROL_THE_PAYLOAD_CONFIG_PATH, so a missing file is an error.
   * `dialect` undefined: detected from the file (CONTROL_THE_PAYLOAD_DIALECT unset, empty or auto).
   */
  mapping: Omit<RawConfig['mapping'], 'dialect'> & { isExplicit: boolean; dialect: (typeof MAPPING_DIALECTS)[number] | undefined };
  webhook: {
    timeoutMs: number;
    verifySsl: boolean;
    maxInFlightPerHost: number;
    maxRetries: number;
    retryMaxTimeMs: number;
    /** WEBHOOK_ALLOWED_HOSTS entries; empty: any http(s) URL. */
    allowedTargets: string[];
  };
  /** AGENT_MAX_MESSAGE_AGE_SECONDS; undefined: no replay window. */
  maxMessageAgeMs: number | undefined;
  maxMessageBytes: number;
  network: NetworkConfig;
  maxInFlight: number;
  /** AGENT_MAX_PENDING_REPORTS: runs waiting for Port to accept their reports before fetching pauses. */
  maxPendingReports: number;
  /** PORT_API_MAX_CALLS_PER_SECOND; 0: Port's headers alone pace the calls. */
  portApiMaxCallsPerSecond: number;
  runLogs: (typeof RUN_LOGS_MODES)[number];
  detailedLogging: boolean;
  logLevel: RawConfig['logLevel'];
  shutdownGraceMs: number;
  healthPort: number;
  polling: RawConfig['polling'];
}

/** Proxies (lower-case variables win, as curl and the official agent's HTTP library do) and where extra CAs come from. */
export interface NetworkConfig {
  httpProxy: string | undefined;
  httpsProxy: string | undefined;
  allProxy: string | undefined;
  noProxy: string;
  caSources: CaSources;
}

for (const format of [...AGENT_FORMATS, ...CHOICE_FORMATS]) convict.addFormat(format);

/** Schema key path (`kafka.runsTopic`) → environment variable name, in schema order. */
export const VARIABLE_BY_KEY: ReadonlyMap<string, string> = collectVariables(CONFIG_SCHEMA as unknown as SchemaNode, '');
/** Schema key paths marked `sensitive`: their values are never shown. */
export const SENSITIVE_KEYS: ReadonlySet<string> = collectSensitive(CONFIG_SCHEMA as unknown as SchemaNode, '');

interface SchemaNode {
  [key: string]: unknown;
}

function isLeaf(node: SchemaNode): boolean {
  return typeof node.env === 'string';
}

function collectVariables(node: SchemaNode, prefix: string, into = new Map<string, string>()): Map<string, string> {
  for (const [key, child] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const childNode = child as SchemaNode;
    if (isLeaf(childNode)) into.set(path, childNode.env as string);
    else collectVariables(childNode, path, into);
  }
  return into;
}

function collectSensitive(node: SchemaNode, prefix: string, into = new Set<string>()): Set<string> {
  for (const [key, child] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const childNode = child as SchemaNode;
    if (isLeaf(childNode)) {
      if (childNode.sensitive === true) into.add(path);
    } else collectSensitive(childNode, path, into);
  }
  return into;
}

/** Rewrites convict's report (`key: message: value was "x"` per line) in the operator's terms. */
function describeProblems(report: string): string[] {
  return report
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const match = /^([\w.]+): (.*?)(?:: value was (.*))?$/.exec(line);
      if (!match) return line;
      const [, key = '', problem = '', value] = match;
      const variable = VARIABLE_BY_KEY.get(key) ?? key;
      const shown = value !== undefined && !SENSITIVE_KEYS.has(key) ? ` (got ${value})` : '';
      return `${variable} ${problem.trim()}${shown}`;
    });
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function caSources(raw: RawConfig['network']): CaSources {
  const files: CaSources['files'] = [];
  for (const [variable, value] of [
    ['SSL_CERT_FILE', raw.sslCertFile],
    ['REQUESTS_CA_BUNDLE', raw.requestsCaBundle],
    ['NODE_EXTRA_CA_CERTS', raw.nodeExtraCaCerts],
  ] as const) {
    if (value.trim() !== '') files.push({ variable, path: value.trim() });
  }
  return {
    files,
    sslCertDirectories: splitList(raw.sslCertDir, ':'),
    directories: splitList(raw.caDirectories),
  };
}

function networkConfig(raw: RawConfig['network']): NetworkConfig {
  const pick = (lower: string, upper: string): string | undefined => (lower.trim() || upper.trim() || undefined);
  return {
    httpProxy: pick(raw.httpProxyLower, raw.httpProxy),
    httpsProxy: pick(raw.httpsProxyLower, raw.httpsProxy),
    allProxy: pick(raw.allProxyLower, raw.allProxy),
    noProxy: raw.noProxyLower.trim() || raw.noProxy.trim(),
    caSources: caSources(raw),
  };
}

function splitList(value: string, separator = ','): string[] {
  return value
    .split(separator)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Rules that tie several variables together (SPEC §1). */
function crossFieldProblems(raw: RawConfig, env: Environment): string[] {
  const problems: string[] = [];
  const usesKafka = raw.streamerName === 'KAFKA';
  const bootstrapServers = splitList(raw.kafka.bootstrapServers);
  if (usesKafka && raw.kafka.useLocalPortInstance && bootstrapServers.length === 0) {
    problems.push('KAFKA_CONSUMER_BOOTSTRAP_SERVERS is required when USING_LOCAL_PORT_INSTANCE=true (comma-separated host:port list)');
  }
  if (usesKafka && !raw.kafka.useLocalPortInstance && bootstrapServers.length > 0) {
    problems.push(
      'KAFKA_CONSUMER_BOOTSTRAP_SERVERS is only used with USING_LOCAL_PORT_INSTANCE=true; ' +
        'unset it, or set USING_LOCAL_PORT_INSTANCE=true to use these brokers instead of Port-hosted Kafka',
    );
  }
  for (const server of bootstrapServers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(server)) {
      problems.push(`KAFKA_CONSUMER_BOOTSTRAP_SERVERS must be host:port entries (got "${server}")`);
    }
  }
  const invalidTargets = invalidTargetEntries(splitList(raw.webhook.allowedHosts));
  if (invalidTargets.length > 0) {
    problems.push(
      `WEBHOOK_ALLOWED_HOSTS must list hosts (svc.internal, *.corp.internal, host:port) or http(s) URL prefixes without query (got ${invalidTargets.map((item) => JSON.stringify(item)).join(', ')})`,
    );
  }
  for (const [variable, value] of [
    ['http_proxy', raw.network.httpProxyLower],
    ['HTTP_PROXY', raw.network.httpProxy],
    ['https_proxy', raw.network.httpsProxyLower],
    ['HTTPS_PROXY', raw.network.httpsProxy],
    ['all_proxy', raw.network.allProxyLower],
    ['ALL_PROXY', raw.network.allProxy],
  ] as const) {
    // Never the value: a proxy URL may carry a password.
    if (value.trim() !== '' && !isHttpUrl(value.trim())) problems.push(`${variable} must be an http:// or https:// proxy URL`);
  }
  const relativeCaDirectories = splitList(raw.network.caDirectories).filter((folder) => !isAbsolute(folder));
  if (relativeCaDirectories.length > 0) {
    problems.push(`AGENT_CA_DIRECTORIES must list absolute folder paths, comma-separated (got ${relativeCaDirectories.map((folder) => JSON.stringify(folder)).join(', ')})`);
  }
  if (env.CONTROL_THE_PAYLOAD_CONFIG_PATH !== undefined && raw.mapping.path.trim() === '') {
    problems.push('CONTROL_THE_PAYLOAD_CONFIG_PATH must not be empty when set');
  }
  return problems;
}

export function loadConfig(env: Environment): Config {
  const store = convict(CONFIG_SCHEMA, { env: env as NodeJS.ProcessEnv, args: [] });
  try {
    store.validate({ allowed: 'strict' });
  } catch (error) {
    const problems = describeProblems(error instanceof Error ? error.message : String(error));
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`, {
      variable: /^(\S+)/.exec(problems[0] ?? '')?.[1],
    });
  }
  const raw = store.getProperties();
  const problems = crossFieldProblems(raw, env);
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`, { variable: /^(\S+)/.exec(problems[0] ?? '')?.[1] });
  }

  const orgId = raw.port.orgId.trim();
  return {
    port: { ...raw.port, orgId, apiBaseUrl: raw.port.apiBaseUrl.replace(/\/+$/, '') },
    streamerName: raw.streamerName,
    kafka: {
      ...raw.kafka,
      // SPEC §1: Port's ACLs allow groups prefixed with the org id, so an empty group is the org id.
      groupId: raw.kafka.groupId.trim() || orgId,
      runsTopic: raw.kafka.runsTopic.trim() || `${orgId}.runs`,
      changeLogTopic: raw.kafka.changeLogTopic.trim() || `${orgId}.change.log`,
      bootstrapServers: splitList(raw.kafka.bootstrapServers),
    },
    mapping: {
      ...raw.mapping,
      dialect: raw.mapping.dialect === 'auto' ? undefined : raw.mapping.dialect,
      isExplicit: env.CONTROL_THE_PAYLOAD_CONFIG_PATH !== undefined,
    },
    webhook: {
      timeoutMs: Math.round(raw.webhook.timeoutSeconds * 1000),
      verifySsl: raw.webhook.verifySsl,
      maxInFlightPerHost: raw.webhook.maxInFlightPerHost,
      maxRetries: raw.webhook.maxRetries,
      retryMaxTimeMs: Math.round(raw.webhook.retryMaxTimeSeconds * 1000),
      allowedTargets: splitList(raw.webhook.allowedHosts),
    },
    maxMessageAgeMs: raw.maxMessageAgeSeconds > 0 ? Math.round(raw.maxMessageAgeSeconds * 1000) : undefined,
    maxMessageBytes: raw.maxMessageBytes,
    network: networkConfig(raw.network),
    maxInFlight: raw.maxInFlight,
    maxPendingReports: raw.maxPendingReports,
    portApiMaxCallsPerSecond: raw.portApiMaxCallsPerSecond,
    runLogs: raw.runLogs,
    detailedLogging: raw.detailedLogging,
    logLevel: raw.logLevel,
    shutdownGraceMs: Math.round(raw.shutdownGraceSeconds * 1000),
    healthPort: raw.healthPort,
    polling: raw.polling,
  };
}

/**
 * Variables whose values are the agent's own secrets. SPEC §5: expressions may read the
 * environment, except these (the official agent exposes everything).
 */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['PORT_CLIENT_SECRET', 'PORT_CLIENT_ID', 'KAFKA_CONSUMER_PASSWORD', 'KAFKA_CONSUMER_USERNAME']);

/** The environment as mapping expressions see it: every variable but the agent's secrets. */
export function expressionEnvironment(env: Environment): Readonly<Record<string, string>> {
  const visible: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !SECRET_VARIABLES.has(name.toUpperCase())) visible[name] = value;
  }
  return Object.freeze(visible);
}
