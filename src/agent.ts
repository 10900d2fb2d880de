/**
 * The composition root: builds the agent's parts from a loaded configuration and wires the stages
 * (source → message → mapping → delivery → reporting). It reads no environment, handles no signal
 * and never exits: the process entry (main.ts) does that, and tests build the same agent here.
 */
import type { SecureContext } from 'node:tls';
import type { AxiosInstance } from 'axios';
import { createSemaphore } from './concurrency/semaphore.js';
import type { Semaphore } from './concurrency/semaphore.js';
import { expressionEnvironment } from './config/load.js';
import type { Config, Environment } from './config/load.js';
import { startupChecks } from './config/startup-checks.js';
import { createHostGuard } from './delivery/host-guard.js';
import type { HostGuard } from './delivery/host-guard.js';
import { createDeliverer } from './delivery/send.js';
import type { Deliverer } from './delivery/send.js';
import { createTargetPolicy } from './delivery/target-policy.js';
import { ConfigError, describeError } from './errors.js';
import { watchEventLoop } from './health/event-loop.js';
import type { EventLoopWatch } from './health/event-loop.js';
import { createAgentMetrics } from './health/metrics.js';
import type { AgentMetrics } from './health/metrics.js';
import { createProbes } from './health/probes.js';
import type { Probes } from './health/probes.js';
import { startHealthServer } from './health/server.js';
import type { HealthServer } from './health/server.js';
import type { Logger } from './log.js';
import { createCompiler } from './mapping/dialects.js';
import { loadMappings } from './mapping/load.js';
import type { LoadedMappings } from './mapping/load.js';
import { createMapper } from './mapping/render.js';
import { decryptionKey } from './message/decrypt.js';
import { closeHttpClient, createHttpClient, createHttpTransport } from './net/http-client.js';
import type { HttpTransport } from './net/http-client.js';
import { createMessageHandler } from './pipeline/handle.js';
import { createPortBudget } from './reporting/port-budget.js';
import type { PortBudget } from './reporting/port-budget.js';
import { createPortClient } from './reporting/port-client.js';
import type { PortClient } from './reporting/port-client.js';
import { createReporter } from './reporting/reporter.js';
import type { Reporter } from './reporting/reporter.js';
import type { RetryPolicy } from './retry/retry-policy.js';
import { AGENT_VERSION } from './shared/package-root.js';
import type { MessageHandler } from './shared/source-message.js';
import { createKafkaSourceFromConfig } from './sources/kafka-from-config.js';
import { CLAIM_APIS } from './sources/polling-claims.js';
import { createPollingSource, pollingProbeWindows } from './sources/polling.js';
import type { Source } from './sources/types.js';
import { trustedSecureContext } from './trust/secure-context.js';
import { logTrustedCas } from './trust/trust-report.js';

const USER_AGENT = 'port-agent';
/**
 * Messages the agent holds per request slot: a message waiting for a busy host (or in backoff
 * before a retry) holds no request slot, so runs for other hosts keep flowing; this bounds how many
 * such messages, and so memory, before fetching pauses.
 */
const MESSAGES_IN_HAND_PER_REQUEST = 2;
/**
 * Connections to the Port API. Port is tens to hundreds of ms away and a run costs several calls:
 * at 80 ms a call, hundreds of runs a second need this many calls on the wire. Opened on demand,
 * and Port's budget (50 calls a second) keeps far fewer busy in practice.
 */
const PORT_API_MAX_SOCKETS = 256;
const WEBHOOK_RETRY_MIN_BACKOFF_MS = 1_000;
const WEBHOOK_RETRY_MAX_BACKOFF_MS = 10_000;
/** The event loop is watched every second; a block of 10 s within the last minute fails liveness. */
const EVENT_LOOP_WATCH_INTERVAL_MS = 1_000;
const EVENT_LOOP_WATCH_WINDOW_MS = 60_000;
const EVENT_LOOP_STALL_MS = 10_000;
/**
 * A consumer that has not even tried to reach the broker for this long is stuck (kafkajs retries
 * a lost broker every ~11 s, the agent rebuilds a crashed consumer within 30 s).
 */
const CONSUMER_STALE_MIN_MS = 120_000;

export interface AgentDeps {
  /** The root logger; each stage logs through a child naming it. */
  logger: Logger;
  /** The environment as the agent read it (with the .env file); expressions see it with secrets removed. */
  env: Environment;
  /** Where a relative PAYLOAD_MAPPING_FILE is found. */
  workingDirectory: string;
  /** Polling failed for POLLING_MAX_FAILURE_DURATION_SECONDS: the agent should stop and exit 0 (SPEC §8). */
  onGiveUp: () => void;
}

/** A built agent: its health server listens; consumption begins with `start`. */
export interface Agent {
  /** The health server's port (the system's choice when HEALTH_PORT is 0). */
  readonly healthPort: number;
  /**
   * Tells Port which streamer this agent uses, then starts consuming; resolves once consumption has
   * started, or at once when `stop` came first. Rejects with a ConfigError for settings that
   * cannot work, or with the source's error (already logged) when it cannot start.
   */
  start(): Promise<void>;
  /** Stops taking messages, lets in-flight runs finish within the grace period, commits. Idempotent. */
  stop(): Promise<void>;
  /** Releases the health server, the event-loop watch, the expression engine and every connection; after `stop`. */
  close(): Promise<void>;
}

/** WEBHOOK_MAX_RETRIES and WEBHOOK_RETRY_MAX_TIME_SECONDS; backoff 1 s doubling to 10 s, with jitter. */
function webhookRetryPolicy(config: Config): RetryPolicy {
  return { retries: config.webhook.maxRetries, minTimeoutMs: WEBHOOK_RETRY_MIN_BACKOFF_MS, maxTimeoutMs: WEBHOOK_RETRY_MAX_BACKOFF_MS, maxRetryTimeMs: config.webhook.retryMaxTimeMs };
}

/**
 * The payload mapping file, compiled once, its language and any expression that does not compile
 * logged. @throws ConfigError or MappingError.
 */
function loadMappingFile(config: Config, deps: AgentDeps): LoadedMappings {
  const environment = expressionEnvironment(deps.env);
  const loaded = loadMappings({ ...config.mapping, workingDirectory: deps.workingDirectory }, (dialect) => createCompiler(dialect, environment));
  deps.logger.info(
    { path: loaded.path, builtIn: loaded.isBuiltIn, dialect: loaded.dialect, dialectReason: loaded.reason, mappings: loaded.mappings.length },
    'payload mapping loaded',
  );
  for (const error of loaded.uncompiled) {
    deps.logger.warn(
      { mappingIndex: error.mappingIndex, field: error.field, expression: error.expression, dialect: loaded.dialect },
      `${error.message}; it yields null, as in the official agent (an enabled that never matches, a field that comes out null). port-agent check-config refuses this file`,
    );
  }
  return loaded;
}

/** The Port API side: its budget, the client (token, retries) and the report queues. */
function buildReporting(config: Config, secureContext: SecureContext | undefined, metrics: AgentMetrics, logger: Logger): { port: PortClient; budget: PortBudget; reporter: Reporter; http: HttpTransport } {
  const portLogger = logger.child({ stage: 'port-api' });
  const http = createHttpTransport(config.port.apiBaseUrl, { verifyTls: true, userAgent: USER_AGENT, maxSocketsPerHost: PORT_API_MAX_SOCKETS, proxy: config.network, secureContext });
  const budget = createPortBudget({ maxCallsPerSecond: config.portApiMaxCallsPerSecond, logger: portLogger, metrics });
  const port = createPortClient({ metrics, budget, http, clientId: config.port.clientId, clientSecret: config.port.clientSecret, logger: portLogger });
  const reporter = createReporter({ port, budget, detailedLogging: config.detailedLogging, runLogs: config.runLogs, logger: logger.child({ stage: 'reporting' }), metrics });
  return { port, budget, reporter, http };
}

/** The internal-services side: per-host limits, the allow-list, retries, signing; and its HTTP client, closed last. */
function buildDelivery(config: Config, secureContext: SecureContext | undefined, requestSlots: Semaphore, metrics: AgentMetrics): { deliverer: Deliverer; hosts: HostGuard; http: AxiosInstance } {
  const http = createHttpClient({ verifyTls: config.webhook.verifySsl, userAgent: USER_AGENT, maxSocketsPerHost: config.webhook.maxInFlightPerHost, proxy: config.network, secureContext });
  const hosts = createHostGuard({ perHostLimit: config.webhook.maxInFlightPerHost });
  const deliverer = createDeliverer({
    http,
    secret: config.port.clientSecret,
    timeoutMs: config.webhook.timeoutMs,
    retryPolicy: webhookRetryPolicy(config),
    inFlight: requestSlots,
    hosts,
    targets: createTargetPolicy(config.webhook.allowedTargets),
    metrics,
  });
  return { deliverer, hosts, http };
}

/** The probe windows: a polling loop pauses longer than a Kafka consumer between answers. */
function probeWindows(config: Config): { consumerStaleAfterMs: number; brokerSilentAfterMs: number } {
  if (config.streamerName === 'POLLING') return pollingProbeWindows(config.polling);
  return { consumerStaleAfterMs: Math.max(CONSUMER_STALE_MIN_MS, 3 * config.kafka.sessionTimeoutMs), brokerSilentAfterMs: config.kafka.sessionTimeoutMs };
}

interface ProbeParts {
  config: Config;
  port: PortClient;
  eventLoop: EventLoopWatch;
  source: () => Source | undefined;
  isStopping: () => boolean;
}

function buildProbes(parts: ProbeParts): Probes {
  return createProbes(
    { source: () => parts.source()?.status(), portHasAnswered: parts.port.hasAnswered, isStopping: parts.isStopping, eventLoop: parts.eventLoop },
    { ...probeWindows(parts.config), eventLoopStallMs: EVENT_LOOP_STALL_MS },
  );
}

interface HealthInputs {
  config: Config;
  metrics: AgentMetrics;
  probes: Probes;
  logger: Logger;
}

/** @throws ConfigError when HEALTH_PORT cannot be listened on. */
async function startHealth(inputs: HealthInputs): Promise<HealthServer> {
  const { config, metrics, probes, logger } = inputs;
  try {
    const health = await startHealthServer({ port: config.healthPort, probes, metrics, onError: (error) => logger.warn({ err: describeError(error) }, 'rendering the metrics failed') });
    logger.info({ port: health.port, paths: ['/healthz', '/readyz', '/metrics'] }, 'health server listening');
    return health;
  } catch (error) {
    throw new ConfigError(`Invalid configuration: HEALTH_PORT ${config.healthPort} cannot be used: ${describeError(error)}`, { variable: 'HEALTH_PORT' });
  }
}

/** The start-up checks, the trusted CAs logged, and what they give the clients. @throws ConfigError. */
function checkStartup(config: Config, mappings: LoadedMappings['mappings'], logger: Logger): { key: ReturnType<typeof decryptionKey>; secureContext: SecureContext | undefined } {
  const key = decryptionKey(config.port.clientSecret);
  // The checks `port-agent check-config` makes too: decryption key, Kafka security, CA files.
  const trusted = startupChecks(config, mappings, key);
  logTrustedCas(trusted, logger);
  // One context for every TLS client: the Port API, internal services and Kafka.
  return { key, secureContext: trustedSecureContext(trusted.ca) };
}

interface HandlerParts {
  mappings: LoadedMappings['mappings'];
  deliverer: Deliverer;
  reporter: Reporter;
  metrics: AgentMetrics;
  key: ReturnType<typeof decryptionKey>;
  logger: Logger;
}

/** One message through the stages (message → mapping → delivery → reporting), counted by outcome. */
function buildHandler(config: Config, parts: HandlerParts): MessageHandler {
  const handleMessage = createMessageHandler({
    mapper: createMapper(parts.mappings),
    deliverer: parts.deliverer,
    reporter: parts.reporter,
    logger: parts.logger.child({ stage: 'pipeline' }),
    secret: config.port.clientSecret,
    skipUnmatchedNodeRuns: config.mapping.skipUnmatchedNodeRuns,
    decryptionKey: parts.key,
    maxMessageAgeMs: config.maxMessageAgeMs,
    maxMessageBytes: config.maxMessageBytes,
  });
  return async (message) => {
    const handled = await handleMessage(message);
    parts.metrics.messageHandled(message.topic, handled.outcome);
    const { producedAtMs } = message;
    // `reported` never rejects: it settles once Port accepted the final report or refused it for good.
    if (handled.reported && producedAtMs !== undefined) {
      void handled.reported.then(() => parts.metrics.runEnded(handled.outcome, (Date.now() - producedAtMs) / 1000));
    }
    return handled;
  };
}

function logStarting(config: Config, logger: Logger): void {
  logger.info(
    {
      orgId: config.port.orgId,
      streamer: config.streamerName,
      ...(config.streamerName === 'KAFKA' ? { groupId: config.kafka.groupId, topics: [config.kafka.runsTopic, config.kafka.changeLogTopic] } : {}),
      apiBaseUrl: config.port.apiBaseUrl,
    },
    'port-agent starting',
  );
}

/** The topics the configured source reads, as its messages name them in logs and metrics. */
function sourceTopics(config: Config): string[] {
  return config.streamerName === 'POLLING' ? CLAIM_APIS.map((api) => api.topic) : [config.kafka.runsTopic, config.kafka.changeLogTopic];
}

/** The source of the configured streamer (SPEC §8, STREAMER_NAME=POLLING: no Kafka). */
function sourceName(config: Config): string {
  return config.streamerName === 'POLLING' ? 'the polling source' : 'the Kafka source';
}

interface RunningParts {
  config: Config;
  logger: Logger;
  health: HealthServer;
  reporter: Reporter;
  handle: MessageHandler;
  createSource: () => Source;
  /** What the probes and metrics read: the source once started, and whether a stop came. */
  state: { source: Source | undefined; isStopping: boolean };
  /** Releases everything but the health server. */
  release: () => Promise<void>;
}

/** Start, stop and close over the built parts. */
function runningAgent(parts: RunningParts): Agent {
  const { config, logger, state } = parts;
  let stopping: Promise<void> | undefined;
  let resolveStopRequested: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    resolveStopRequested = resolve;
  });
  return {
    healthPort: parts.health.port,
    async start() {
      // A stop does not wait for the announcement: Port may not answer at all.
      await Promise.race([parts.reporter.announceStreamer(config.streamerName, logger), stopRequested]);
      if (state.isStopping) return;
      try {
        state.source = parts.createSource();
        await state.source.start(parts.handle);
      } catch (error) {
        // A configuration mistake gets its one line from the process entry instead.
        if (!(error instanceof ConfigError)) logger.fatal({ err: describeError(error) }, `${sourceName(config)} could not start`);
        throw error;
      }
    },
    stop() {
      state.isStopping = true;
      resolveStopRequested();
      stopping ??= state.source?.stop() ?? Promise.resolve();
      return stopping;
    },
    async close() {
      try {
        await parts.health.close();
      } finally {
        await parts.release();
      }
    },
  };
}

/**
 * Builds the agent: the mapping file, the start-up checks, the clients, the stages and the health
 * server. Nothing is consumed until `start`.
 * @throws ConfigError or MappingError for a configuration that cannot start.
 */
export async function createAgent(config: Config, deps: AgentDeps): Promise<Agent> {
  const { logger } = deps;
  const { mappings, compiler } = loadMappingFile(config, deps);
  let startup: ReturnType<typeof checkStartup>;
  try {
    startup = checkStartup(config, mappings, logger);
  } catch (error) {
    compiler.close();
    throw error;
  }
  const { key, secureContext } = startup;
  const metrics = createAgentMetrics({ version: AGENT_VERSION }, { topics: sourceTopics(config) });
  const { port, budget, reporter, http: portHttp } = buildReporting(config, secureContext, metrics, logger);
  const requestSlots = createSemaphore(config.maxInFlight);
  const delivery = buildDelivery(config, secureContext, requestSlots, metrics);
  const handle = buildHandler(config, { mappings, deliverer: delivery.deliverer, reporter, metrics, key, logger });
  // AGENT_MAX_PENDING_REPORTS: runs whose reports Port has not accepted yet, before fetching pauses.
  const awaitingReports = createSemaphore(config.maxPendingReports);
  const maxInHand = config.maxInFlight * MESSAGES_IN_HAND_PER_REQUEST;
  logStarting(config, logger);

  const state: RunningParts['state'] = { source: undefined, isStopping: false };
  const eventLoop = watchEventLoop({ intervalMs: EVENT_LOOP_WATCH_INTERVAL_MS, windowMs: EVENT_LOOP_WATCH_WINDOW_MS });
  const probes = buildProbes({ config, port, eventLoop, source: () => state.source, isStopping: () => state.isStopping });
  metrics.observe({
    messagesInHand: () => state.source?.status().messagesInHand ?? 0,
    requestsInFlight: () => requestSlots.active,
    consumerLag: () => state.source?.status().lag ?? [],
    brokerBacklog: () => state.source?.status().backlog ?? [],
    runsAwaitingReports: () => awaitingReports.active,
    portCallsWaiting: budget.waiting,
    circuits: () => delivery.hosts.circuits(),
    isReady: () => probes.readiness().ok,
  });
  const release = async (): Promise<void> => {
    eventLoop.stop();
    compiler.close();
    closeHttpClient(delivery.http);
    await portHttp.close();
  };
  let health: HealthServer;
  try {
    health = await startHealth({ config, metrics, probes, logger });
  } catch (error) {
    await release();
    throw error;
  }

  const createSource = (): Source =>
    config.streamerName === 'POLLING'
      ? createPollingSource({ port, reporter, settings: config.polling, shutdownGraceMs: config.shutdownGraceMs, maxInHand, awaitingReports, logger: logger.child({ stage: 'source' }), onGiveUp: deps.onGiveUp })
      : createKafkaSourceFromConfig({ config, port, maxInHand, awaitingReports, secureContext, clientId: USER_AGENT, logger });
  return runningAgent({ config, logger, health, reporter, handle, createSource, state, release });
}
