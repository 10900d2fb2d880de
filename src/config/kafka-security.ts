/**
 * KAFKA_CONSUMER_SECURITY_PROTOCOL and KAFKA_CONSUMER_AUTHENTICATION_MECHANISM (SPEC §2), checked
 * once at start; the Kafka source turns the result into kafkajs options.
 */
import { ConfigError } from '../errors.js';
import type { Config } from './load.js';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** What KAFKA_CONSUMER_SECURITY_PROTOCOL and KAFKA_CONSUMER_AUTHENTICATION_MECHANISM ask for. */
export interface KafkaSecurity {
  usesTls: boolean;
  /** Undefined without SASL (PLAINTEXT, SSL): the mechanism is then ignored, as librdkafka does. */
  saslMechanism: SaslMechanism | undefined;
}

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
