/**
 * The Kafka source as the configuration describes it: the security settings (checked at start),
 * credentials from Port unless USING_LOCAL_PORT_INSTANCE, brokers verified against the same CAs as
 * every other TLS connection (SPEC §1, §2). Credentials are fetched when the source starts, retried
 * with backoff while Port is unreachable, and again when the brokers refuse them.
 */
import type { SecureContext } from 'node:tls';
import type { Semaphore } from '../concurrency/semaphore.js';
import { kafkaSecurity } from '../config/kafka-security.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { PortClient } from '../reporting/port-client.js';
import { createKafkaConnector } from './kafka-connector.js';
import { fetchKafkaCredentials } from './kafka-credentials.js';
import { kafkaLogLevel } from './kafka-log.js';
import { createKafkaSource } from './kafka.js';
import type { Source } from './types.js';

export interface KafkaSourceFromConfigDeps {
  config: Pick<Config, 'kafka' | 'logLevel' | 'shutdownGraceMs'>;
  /** Fetches the credentials of Port-hosted Kafka. */
  port: PortClient;
  /** Messages handled at once until delivered; fetching pauses at the limit. */
  maxInHand: number;
  awaitingReports: Semaphore;
  secureContext: SecureContext | undefined;
  clientId: string;
  logger: Logger;
}

/** @throws ConfigError for security settings that cannot work (checked at start already). */
export function createKafkaSourceFromConfig(deps: KafkaSourceFromConfigDeps): Source {
  const { kafka } = deps.config;
  const connector = createKafkaConnector({
    security: kafkaSecurity(kafka),
    secureContext: deps.secureContext,
    credentials: kafka.useLocalPortInstance
      ? () => Promise.resolve({ brokers: kafka.bootstrapServers, username: undefined, password: undefined })
      : () => fetchKafkaCredentials(deps.port),
    clientId: deps.clientId,
    logLevel: kafkaLogLevel(deps.config.logLevel),
    logger: deps.logger,
  });
  return createKafkaSource({
    connector,
    groupId: kafka.groupId,
    runsTopic: kafka.runsTopic,
    changeLogTopic: kafka.changeLogTopic,
    sessionTimeoutMs: kafka.sessionTimeoutMs,
    fetchMaxWaitMs: kafka.fetchMaxWaitMs,
    fromBeginning: kafka.autoOffsetReset === 'earliest',
    shutdownGraceMs: deps.config.shutdownGraceMs,
    maxInHand: deps.maxInHand,
    awaitingReports: deps.awaitingReports,
    logger: deps.logger.child({ stage: 'source' }),
  });
}
