/**
 * The kafkajs client configuration for SPEC §2: brokers, TLS and SASL from the configured security
 * protocol and mechanism. Pure, so every combination is testable as data.
 */
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { ConfigError } from '../errors.js';
import type { Config } from '../config/load.js';

export interface KafkaCredentials {
  brokers: string[];
  username: string | undefined;
  password: string | undefined;
}

export type KafkaConnection = Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;

export function kafkaConnection(kafka: Pick<Config['kafka'], 'securityProtocol' | 'authenticationMechanism'>, credentials: KafkaCredentials): KafkaConnection {
  const usesSasl = kafka.securityProtocol === 'SASL_SSL' || kafka.securityProtocol === 'SASL_PLAINTEXT';
  const usesTls = kafka.securityProtocol === 'SASL_SSL' || kafka.securityProtocol === 'SSL';
  const connection: KafkaConnection = { brokers: credentials.brokers, ssl: usesTls };
  if (!usesSasl) return connection;
  if (kafka.authenticationMechanism === 'NONE') {
    throw new ConfigError(
      `Invalid configuration: KAFKA_CONSUMER_AUTHENTICATION_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with KAFKA_CONSUMER_SECURITY_PROTOCOL=${kafka.securityProtocol}`,
      { variable: 'KAFKA_CONSUMER_AUTHENTICATION_MECHANISM' },
    );
  }
  const username = credentials.username ?? '';
  const password = credentials.password ?? '';
  const mechanism = kafka.authenticationMechanism.toLowerCase() as 'plain' | 'scram-sha-256' | 'scram-sha-512';
  const sasl: SASLOptions = { mechanism, username, password } as SASLOptions;
  return { ...connection, sasl };
}
