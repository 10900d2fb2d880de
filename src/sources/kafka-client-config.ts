/**
 * The kafkajs client configuration for SPEC §2: brokers, TLS and SASL from the configured security
 * protocol and mechanism. Pure, so every combination is testable as data.
 */
import type { SecureContext } from 'node:tls';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { AgentError } from '../errors.js';
import type { KafkaSecurity } from '../config/kafka-security.js';

export interface KafkaCredentials {
  brokers: string[];
  username: string | undefined;
  password: string | undefined;
}

export type KafkaConnection = Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;

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
