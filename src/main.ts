/**
 * The composition root: the only module that reads the environment, builds clients, wires the
 * stages, handles signals and decides the exit code.
 */
import { loadConfig, expressionEnvironment } from './config/load.js';
import type { Config, Environment } from './config/load.js';
import { withEnvFile } from './config/env-file.js';
import { runCheckConfigCommand } from './commands/check-config.js';
import { startupChecks } from './config/startup-checks.js';
import { runRenderCommand } from './commands/render.js';
import { createSemaphore } from './concurrency/semaphore.js';
import type { Semaphore } from './concurrency/semaphore.js';
import { createHostGuard } from './delivery/host-guard.js';
import type { RetryPolicy } from './retry/retry-policy.js';
import { createDeliverer } from './delivery/send.js';
import { createTargetPolicy } from './delivery/target-policy.js';
import { ConfigError, MappingError, describeError } from './errors.js';
import { createHttpClient, createHttpTransport } from './net/http-client.js';
import { watchEventLoop } from './health/event-loop.js';
import { createAgentMetrics } from './health/metrics.js';
import { createProbes } from './health/probes.js';
import { startHealthServer } from './health/server.js';
import type { HealthServer } from './health/server.js';
import { createLogger } from './log.js';
import type { Logger } from './log.js';
import { createCompiler } from './mapping/dialects.js';
import { loadMappings } from './mapping/load.js';
import type { LoadedMappings } from './mapping/load.js';
import { decryptionKey } from './message/decrypt.js';
import { createMapper } from './mapping/render.js';
import { AGENT_VERSION } from './shared/package-root.js';
import { createMessageHandler } from './pipeline/handle.js';
import { createPortBudget } from './reporting/port-budget.js';
import { createPortClient } from './reporting/port-client.js';
import type { PortClient } from './reporting/port-client.js';
import { createReporter } from './reporting/reporter.js';
import type { Reporter } from './reporting/reporter.js';
import { createKafkaSourceFromConfig } from './sources/kafka-from-config.js';
import { createPollingSource, pollingProbeWindows } from './sources/polling.js';
import type { SourceMessage } from './shared/source-message.js';
import type { Source } from './sources/types.js';
import { trustedSecureContext } from './trust/secure-context.js';
import { logTrustedCas } from './trust/trust-report.js';
import type { TrustedCas } from './trust/trusted-cas.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** A configuration mistake: the operator must change something before a restart can help. */
export const EXIT_CONFIG = 2;

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

/** Prints one line for a configuration mistake — never a stack trace — and gives the exit code. */
function configFailure(error: ConfigError | MappingError): number {
  process.stderr.write(`port-agent: ${error.message}\n`);
  return EXIT_CONFIG;
}

/** SPEC §8, STREAMER_NAME=POLLING: no Kafka; `onGiveUp` once polling has failed for too long. */
function createPolling(config: Config, port: PortClient, reporter: Reporter, awaitingReports: Semaphore, logger: Logger, onGiveUp: () => void): Source {
  return createPollingSource({
    port,
    reporter,
    settings: config.polling,
    shutdownGraceMs: config.shutdownGraceMs,
    maxInHand: config.maxInFlight * MESSAGES_IN_HAND_PER_REQUEST,
    awaitingReports,
    logger: logger.child({ stage: 'source' }),
    onGiveUp,
  });
}

/** WEBHOOK_MAX_RETRIES and WEBHOOK_RETRY_MAX_TIME_SECONDS; backoff 1 s doubling to 10 s, with jitter. */
function webhookRetryPolicy(config: Config): RetryPolicy {
  return { retries: config.webhook.maxRetries, minTimeoutMs: WEBHOOK_RETRY_MIN_BACKOFF_MS, maxTimeoutMs: WEBHOOK_RETRY_MAX_BACKOFF_MS, maxRetryTimeMs: config.webhook.retryMaxTimeMs };
}

/** `port-agent render …`: the dry-run, with the environment as the agent would see it. */
export async function runRender(argv: string[]): Promise<number> {
  let env: Environment;
  try {
    env = withEnvFile(process.env, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) return configFailure(error);
    throw error;
  }
  return runRenderCommand(argv, expressionEnvironment(env), env.PORT_CLIENT_SECRET, env.CONTROL_THE_PAYLOAD_DIALECT, {
    stdout: process.stdout,
    stderr: process.stderr,
  });
}

/** `port-agent check-config`: the agent's start-up checks, without connecting anywhere. */
export async function runCheckConfig(argv: string[]): Promise<number> {
  return runCheckConfigCommand(argv, { env: process.env, workingDirectory: process.cwd(), stdout: process.stdout, stderr: process.stderr });
}

/** Runs the agent until a signal stops it; resolves with the process exit code. */
export async function runAgent(): Promise<number> {
  const workingDirectory = process.cwd();
  const processEnv: Environment = process.env;
  let config: Config;
  let env: Environment;
  try {
    env = withEnvFile(processEnv, workingDirectory);
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return configFailure(error);
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });

  let loaded: LoadedMappings;
  try {
    const environment = expressionEnvironment(env);
    loaded = loadMappings({ ...config.mapping, workingDirectory }, (dialect) => createCompiler(dialect, environment));
  } catch (error) {
    if (error instanceof ConfigError || error instanceof MappingError) return configFailure(error);
    throw error;
  }
  const { mappings, compiler } = loaded;
  const mapper = createMapper(mappings);
  logger.info(
    { path: loaded.path, builtIn: loaded.isBuiltIn, dialect: loaded.dialect, dialectReason: loaded.reason, mappings: mappings.length },
    'payload mapping loaded',
  );
  for (const error of loaded.uncompiled) {
    logger.warn(
      { mappingIndex: error.mappingIndex, field: error.field, expression: error.expression, dialect: loaded.dialect },
      `${error.message}; it yields null, as in the official agent (an enabled that never matches, a field that comes out null). port-agent check-config refuses this file`,
    );
  }
  const key = decryptionKey(config.port.clientSecret);
  // The checks `port-agent check-config` makes too: decryption key, Kafka security, CA files.
  let trusted: TrustedCas;
  try {
    trusted = startupChecks(config, mappings, key);
  } catch (error) {
    compiler.close();
    if (error instanceof ConfigError) return configFailure(error);
    throw error;
  }
  logTrustedCas(trusted, logger);
  // One context for every TLS client: the Port API, internal services and Kafka.
  const secureContext = trustedSecureContext(trusted.ca);
  const portHttp = createHttpTransport(config.port.apiBaseUrl, { verifyTls: true, userAgent: USER_AGENT, maxSocketsPerHost: PORT_API_MAX_SOCKETS, proxy: config.network, secureContext });
  const webhookHttp = createHttpClient({
    verifyTls: config.webhook.verifySsl,
    userAgent: USER_AGENT,
    maxSocketsPerHost: config.webhook.maxInFlightPerHost,
    proxy: config.network,
    secureContext,
  });
  const metrics = createAgentMetrics({ version: AGENT_VERSION });
  const portLogger = logger.child({ stage: 'port-api' });
  const budget = createPortBudget({ maxCallsPerSecond: config.portApiMaxCallsPerSecond, logger: portLogger, metrics });
  const port = createPortClient({
    metrics,
    budget,
    http: portHttp,
    clientId: config.port.clientId,
    clientSecret: config.port.clientSecret,
    logger: portLogger,
  });
  const reporter = createReporter({ port, budget, detailedLogging: config.detailedLogging, runLogs: config.runLogs, logger: logger.child({ stage: 'reporting' }), metrics });
  const requestSlots = createSemaphore(config.maxInFlight);
  const handleMessage = createMessageHandler({
    mapper,
    deliverer: createDeliverer({
      http: webhookHttp,
      secret: config.port.clientSecret,
      timeoutMs: config.webhook.timeoutMs,
      retryPolicy: webhookRetryPolicy(config),
      inFlight: requestSlots,
      hosts: createHostGuard({ perHostLimit: config.webhook.maxInFlightPerHost }),
      targets: createTargetPolicy(config.webhook.allowedTargets),
      metrics,
    }),
    reporter,
    logger: logger.child({ stage: 'pipeline' }),
    secret: config.port.clientSecret,
    skipUnmatchedNodeRuns: config.mapping.skipUnmatchedNodeRuns,
    decryptionKey: key,
    maxMessageAgeMs: config.maxMessageAgeMs,
    maxMessageBytes: config.maxMessageBytes,
  });
  const handle = async (message: SourceMessage) => {
    const handled = await handleMessage(message);
    metrics.messageHandled(message.topic, handled.outcome);
    return handled;
  };
  // AGENT_MAX_PENDING_REPORTS: runs whose reports Port has not accepted yet, before fetching pauses.
  const awaitingReports = createSemaphore(config.maxPendingReports);

  logger.info(
    {
      orgId: config.port.orgId,
      streamer: config.streamerName,
      ...(config.streamerName === 'KAFKA' ? { groupId: config.kafka.groupId, topics: [config.kafka.runsTopic, config.kafka.changeLogTopic] } : {}),
      apiBaseUrl: config.port.apiBaseUrl,
    },
    'port-agent starting',
  );

  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  // The process lives until it is told to stop, even in the moments no socket or timer is open
  // (between a crashed consumer and its rebuild): exiting then would silently stop consumption.
  const keepAlive = setInterval(() => undefined, 60_000);
  let source: Source | undefined;
  let isStopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (isStopping) {
      logger.warn({ signal }, 'second signal: exiting now; unfinished messages will be delivered again');
      resolveExit(EXIT_FAILURE);
      return;
    }
    isStopping = true;
    logger.info({ signal }, 'stopping: finishing in-flight runs, then committing');
    (source?.stop() ?? Promise.resolve()).then(
      () => {
        logger.info('stopped');
        resolveExit(EXIT_OK);
      },
      (error: unknown) => {
        logger.error({ err: describeError(error) }, 'stopping failed');
        resolveExit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SPEC §8: polling that failed for POLLING_MAX_FAILURE_DURATION_SECONDS stops the agent with 0, as the reference.
  const giveUp = () => {
    if (isStopping) return;
    isStopping = true;
    logger.info('stopping: polling gave up; finishing in-flight runs');
    const stopped = () => {
      logger.info('stopped');
      resolveExit(EXIT_OK);
    };
    (source?.stop() ?? Promise.resolve()).then(stopped, stopped);
  };

  const eventLoop = watchEventLoop({ intervalMs: EVENT_LOOP_WATCH_INTERVAL_MS, windowMs: EVENT_LOOP_WATCH_WINDOW_MS });
  metrics.observe({
    messagesInHand: () => source?.status().messagesInHand ?? 0,
    requestsInFlight: () => requestSlots.active,
    consumerLag: () => source?.status().lag ?? [],
    runsAwaitingReports: () => awaitingReports.active,
    portCallsWaiting: budget.waiting,
  });
  const probes = createProbes(
    { source: () => source?.status(), portHasAnswered: port.hasAnswered, isStopping: () => isStopping, eventLoop },
    {
      ...(config.streamerName === 'POLLING'
        ? pollingProbeWindows(config.polling)
        : { consumerStaleAfterMs: Math.max(CONSUMER_STALE_MIN_MS, 3 * config.kafka.sessionTimeoutMs), brokerSilentAfterMs: config.kafka.sessionTimeoutMs }),
      eventLoopStallMs: EVENT_LOOP_STALL_MS,
    },
  );
  let health: HealthServer | undefined;
  try {
    health = await startHealthServer({
      port: config.healthPort,
      probes,
      metrics,
      onError: (error) => logger.warn({ err: describeError(error) }, 'rendering the metrics failed'),
    });
    logger.info({ port: health.port, paths: ['/healthz', '/readyz', '/metrics'] }, 'health server listening');
  } catch (error) {
    eventLoop.stop();
    clearInterval(keepAlive);
    compiler.close();
    return configFailure(new ConfigError(`Invalid configuration: HEALTH_PORT ${config.healthPort} cannot be used: ${describeError(error)}`, { variable: 'HEALTH_PORT' }));
  }

  // A stop signal does not wait for the announcement: Port may not answer at all.
  await Promise.race([reporter.announceStreamer(config.streamerName, logger), exit]);
  if (!isStopping) {
    try {
      source = config.streamerName === 'POLLING' ? createPolling(config, port, reporter, awaitingReports, logger, giveUp) : createKafkaSourceFromConfig({ config, port, maxInHand: config.maxInFlight * MESSAGES_IN_HAND_PER_REQUEST, awaitingReports, secureContext, clientId: USER_AGENT, logger });
    } catch (error) {
      if (error instanceof ConfigError) resolveExit(configFailure(error));
      else {
        logger.fatal({ err: describeError(error) }, 'cannot connect to Kafka');
        resolveExit(EXIT_FAILURE);
      }
    }
  }
  if (source && !isStopping) {
    source.start(handle).catch((error: unknown) => {
      logger.fatal({ err: describeError(error) }, 'the Kafka source failed');
      resolveExit(EXIT_FAILURE);
    });
  }
  const code = await exit;
  clearInterval(keepAlive);
  eventLoop.stop();
  await health.close();
  compiler.close();
  return code;
}
