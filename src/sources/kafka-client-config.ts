/**
 * The kafkajs client configuration for SPEC §2: brokers, TLS and SASL from the configured security
 * protocol and mechanism. Pure, so every combination is testable as data.
 */
import type { SecureContext } from 'node:tls';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { AgentError, ConfigError } from '../errors.js';
import type { Config } from '../config/load.js';

export interface KafkaCredentials {
  brokers: string[];
  username: string | undefined;
  password: string | undefined;
}

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** What KAFKA_CONSUMER_SECURITY_PROTOCOL and KAFKA_CONSUMER_AUTHENTICATION_MECHANISM ask for. */
export interface KafkaSecurity {
  usesTls: boolean;
  /** Undefined without SASL (PLAINTEXT, SSL): the mechanism is then ignored, as librdkafka does. */
  saslMechanism: SaslMechanism | undefined;
}

export type KafkaConnection = Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;

type SecuritySettings = Pick<Config['kafka'], 'securityProtocol' | 'authenticationMechanism' | 'useLocalPortInstance'>;

const SASL_MECHANISMS: Readonly<Record<Config['kafka']['authenticationMechanism'], SaslMechanism | undefined>> = {
  NONE: undefined,
  PLAIN: 'plain',
  'SCRAM-SHA-256': 'scram-sha-256',
  'SCRAM-SHA-512': 'scram-sha-512',
};

/**
 * Validates the protocol and mechanism once, at start: a SASL protocol needs a mechanism, and
 * credentials, which only Port-hosted Kafka provides (`GET /v1/kafka-credentials`).
 */
export function kafkaSecurity(kafka: SecuritySettings): KafkaSecurity {
  const protocol = kafka.securityProtocol;
  const usesSasl = protocol === 'SASL_SSL' || protocol === 'SASL_PLAINTEXT';
  const usesTls = protocol === 'SASL_SSL' || protocol === 'SSL';
  if (!usesSasl) return { usesTls, saslMechanism: undefined };
  const saslMechanism = SASL_MECHANISMS[kafka.authenticationMechanism];
  if (saslMechanism === undefined) {
    throw new ConfigError(
      `Invalid configuration: KAFKA_CONSUMER_AUTHENTICATION_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with KAFKA_CONSUMER_SECURITY_PROTOCOL=${protocol}`,
      { variable: 'KAFKA_CONSUMER_AUTHENTICATION_MECHANISM' },
    );
  }
  if (kafka.useLocalPortInstance) {
    throw new ConfigError(
      `Invalid configuration: KAFKA_CONSUMER_SECURITY_PROTOCOL=${protocol} needs a SASL username and password, which only Port-hosted Kafka provides; ` +
        'with USING_LOCAL_PORT_INSTANCE=true use PLAINTEXT or SSL',
      { variable: 'KAFKA_CONSUMER_SECURITY_PROTOCOL' },
    );
  }
  return { usesTls, saslMechanism };
}

/**
 * The kafkajs connection options for `credentials`. With TLS, brokers are verified against the
 * trusted CAs' shared context (trust/secure-context.ts) when given, else against Node's defaults
 * (`ssl: true`: the bundled Mozilla CAs and NODE_EXTRA_CA_CERTS). Errors name what is missing,
 * never a value.
 */
export function kafkaConnection(security: KafkaSecurity, credentials: KafkaCredentials, secureContext?: SecureContext): KafkaConnection {
  const ssl = security.usesTls && secureContext !== undefined ? { secureContext } : security.usesTls;
  const connection: KafkaConnection = { brokers: credentials.brokers, ssl };
  const mechanism = security.saslMechanism;
  if (mechanism === undefined) return connection;
  const { username, password } = credentials;
  if (username === undefined || username === '' || password === undefined || password === '') {
    const missing = username === undefined || username === '' ? 'username' : 'password';
    // Port's answer, not the operator's configuration: fetching again may help.
    throw new AgentError(`the Kafka credentials have no ${missing}, which SASL ${mechanism.toUpperCase()} needs`, { retriable: true });
  }
  // kafkajs types each mechanism apart; the three share this shape.
  const sasl = { mechanism, username, password } as SASLOptions;
  return { ...connection, sasl };
}
