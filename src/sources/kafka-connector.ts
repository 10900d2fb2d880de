/**
 * Credentials → Kafka client (SPEC §2). Unless USING_LOCAL_PORT_INSTANCE, the brokers, username and
 * password come from the Port API; when a broker refuses them (Port rotated them), the Kafka source
 * calls renew() and the next client is built from credentials fetched again — no restart.
 */
import type { SecureContext } from 'node:tls';
import { Kafka } from 'kafkajs';
import type { logLevel } from 'kafkajs';
import type { Logger } from '../log.js';
import { kafkaConnection } from './kafka-client-config.js';
import type { KafkaSecurity } from '../config/kafka-security.js';
import type { KafkaCredentials } from './kafka-client-config.js';
import { kafkaLogCreator } from './kafka-log.js';

/** Hands out the kafkajs client for the current credentials. */
export interface KafkaConnector {
  /**
   * The client for the current credentials, getting them first at start and after renew(); callers
   * asking meanwhile share one fetch. Rejects when they cannot be had: the caller backs off and asks
   * again.
   */
  client(): Promise<Kafka>;
  /** The brokers refused the credentials: the next client() gets them again. */
  renew(): void;
}

export interface KafkaConnectorDeps {
  /** The validated KAFKA_CONSUMER_SECURITY_PROTOCOL and KAFKA_CONSUMER_AUTHENTICATION_MECHANISM. */
  security: KafkaSecurity;
  /** The trusted CAs to verify brokers against with TLS; undefined: Node's defaults. */
  secureContext?: SecureContext | undefined;
  /** Brokers and SASL credentials: `GET /v1/kafka-credentials`, or the configured bootstrap servers. */
  credentials: () => Promise<KafkaCredentials>;
  clientId: string;
  logLevel: logLevel;
  /** The root logger: the connector logs as stage `source`, kafkajs as stage `kafkajs`. */
  logger: Logger;
}

/** kafkajs' SASL_AUTHENTICATION_FAILED (src/protocol/error.js), as the broker answers SaslAuthenticate. */
const SASL_AUTHENTICATION_FAILED_CODE = 58;

/**
 * Whether a kafkajs error, or any error in its `cause` chain, says the broker refused the SASL
 * credentials: kafkajs throws KafkaJSSASLAuthenticationError from its SASL authenticators
 * (src/broker/saslAuthenticator/*.js) and wraps it in KafkaJSNonRetriableError (src/retry/index.js);
 * the broker's own answer is a KafkaJSProtocolError of type SASL_AUTHENTICATION_FAILED, code 58.
 */
export function isAuthenticationFailure(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const { name, type, code, cause, originalError } = current as { name?: unknown; type?: unknown; code?: unknown; cause?: unknown; originalError?: unknown };
    if (name === 'KafkaJSSASLAuthenticationError' || type === 'SASL_AUTHENTICATION_FAILED' || code === SASL_AUTHENTICATION_FAILED_CODE) return true;
    current = cause ?? originalError;
  }
  return false;
}

export function createKafkaConnector(deps: KafkaConnectorDeps): KafkaConnector {
  const logger = deps.logger.child({ stage: 'source' });
  let current: Promise<Kafka> | undefined;
  /** Clients built so far; the first is generation 1. */
  let generation = 0;

  async function build(): Promise<Kafka> {
    const credentials = await deps.credentials();
    const connection = kafkaConnection(deps.security, credentials, deps.secureContext);
    generation += 1;
    logger.info(
      { generation, brokers: credentials.brokers, tls: deps.security.usesTls, saslMechanism: deps.security.saslMechanism ?? 'none' },
      'Kafka client configured',
    );
    return new Kafka({
      clientId: deps.clientId,
      ...connection,
      logLevel: deps.logLevel,
      // SPEC §9: whatever kafkajs logs, this client's password is cut out of it.
      logCreator: kafkaLogCreator(deps.logger, { secrets: credentials.password === undefined ? [] : [credentials.password] }),
    });
  }

  return {
    client() {
      const pending: Promise<Kafka> =
        current ??
        build().catch((error: unknown) => {
          // A failed fetch is not kept: the next call tries again.
          if (current === pending) current = undefined;
          throw error;
        });
      current = pending;
      return pending;
    },
    renew() {
      current = undefined;
    },
  };
}
