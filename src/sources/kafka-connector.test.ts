import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { AgentError } from '../errors.js';
import { capturingLogger } from '../../test/support/log-lines.js';
import { kafkaSecurity } from '../config/kafka-security.js';
import type { KafkaCredentials } from './kafka-client-config.js';
import { createKafkaConnector, isAuthenticationFailure } from './kafka-connector.js';

const PASSWORD = 'first-pa55word';
const ROTATED_PASSWORD = 'rotated-pa55word';
const SASL_SSL = kafkaSecurity({ securityProtocol: 'SASL_SSL', authenticationMechanism: 'SCRAM-SHA-512', useLocalPortInstance: false });

/** Credentials handed out in turn, one per fetch, counting the fetches. */
function credentialsInTurn(...answers: (KafkaCredentials | Error)[]) {
  let fetches = 0;
  return {
    fetches: () => fetches,
    fetch: async (): Promise<KafkaCredentials> => {
      const answer = answers[Math.min(fetches, answers.length - 1)];
      fetches += 1;
      await Promise.resolve();
      if (answer instanceof Error || answer === undefined) throw answer ?? new Error('no answer');
      return answer;
    },
  };
}

function connectorWith(credentials: () => Promise<KafkaCredentials>) {
  const { logger, lines, text } = capturingLogger('trace');
  const connector = createKafkaConnector({ security: SASL_SSL, credentials, clientId: 'port-agent', logLevel: kafkajs.logLevel.NOTHING, logger });
  return { connector, lines, output: text };
}

describe('Kafka connector', () => {
  it('fetches the credentials once for every caller until they are renewed', async () => {
    const port = credentialsInTurn({ brokers: ['b1:9096'], username: 'user', password: PASSWORD });
    const { connector } = connectorWith(port.fetch);
    const [first, second] = await Promise.all([connector.client(), connector.client()]);
    assert.equal(first, second);
    assert.equal(await connector.client(), first);
    assert.equal(port.fetches(), 1);
  });

  it('builds a new client from credentials fetched again after renew()', async () => {
    const port = credentialsInTurn({ brokers: ['b1:9096'], username: 'user', password: PASSWORD }, { brokers: ['b2:9096'], username: 'user', password: ROTATED_PASSWORD });
    const { connector, lines, output } = connectorWith(port.fetch);
    const first = await connector.client();
    connector.renew();
    const second = await connector.client();
    assert.notEqual(second, first);
    assert.equal(port.fetches(), 2);
    const configured = lines.filter((line) => line.msg === 'Kafka client configured') as { generation: number; brokers: string[]; saslMechanism: string; tls: boolean }[];
    assert.deepEqual(
      configured.map(({ generation, brokers, saslMechanism, tls }) => ({ generation, brokers, saslMechanism, tls })),
      [
        { generation: 1, brokers: ['b1:9096'], saslMechanism: 'scram-sha-512', tls: true },
        { generation: 2, brokers: ['b2:9096'], saslMechanism: 'scram-sha-512', tls: true },
      ],
    );
    assert.ok(!output().includes(PASSWORD) && !output().includes(ROTATED_PASSWORD), 'no password in any line');
  });

  it('does not keep a failed fetch: the next call fetches again', async () => {
    const port = credentialsInTurn(new AgentError('could not fetch Kafka credentials from Port: Port API GET /v1/kafka-credentials answered 503', { retriable: true }), {
      brokers: ['b1:9096'],
      username: 'user',
      password: PASSWORD,
    });
    const { connector } = connectorWith(port.fetch);
    await assert.rejects(connector.client(), /answered 503/);
    await connector.client();
    assert.equal(port.fetches(), 2);
  });

  it('rejects credentials without a password for SASL, saying so without the username', async () => {
    const port = credentialsInTurn({ brokers: ['b1:9096'], username: 'secret-user', password: undefined });
    const { connector } = connectorWith(port.fetch);
    await assert.rejects(connector.client(), (error: unknown) => error instanceof AgentError && /no password/.test(error.message) && !error.message.includes('secret-user'));
  });
});

describe('isAuthenticationFailure', () => {
  // The kafkajs error classes as kafkajs 2.2 builds them; their typings declare fewer arguments.
  type Constructor = new (e: unknown, metadata?: Record<string, unknown>) => Error;
  const errors = kafkajs as unknown as Record<string, Constructor>;
  const construct = (name: string, e: unknown, metadata?: Record<string, unknown>): Error => {
    const ErrorClass = errors[name];
    if (!ErrorClass) throw new Error(`kafkajs exports no ${name}`);
    return new ErrorClass(e, metadata);
  };
  const saslFailure = () => construct('KafkaJSSASLAuthenticationError', 'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials');
  const brokerAnswer = (type: string, code: number) => construct('KafkaJSProtocolError', { type, code, retriable: false, message: 'refused' });

  const cases: [string, () => unknown, boolean][] = [
    ['KafkaJSSASLAuthenticationError from a SASL authenticator', saslFailure, true],
    ['it wrapped by the retrier in KafkaJSNonRetriableError (cause)', () => construct('KafkaJSNonRetriableError', saslFailure(), { cause: saslFailure() }), true],
    ['it wrapped twice', () => construct('KafkaJSNonRetriableError', 'outer', { cause: construct('KafkaJSNonRetriableError', 'inner', { cause: saslFailure() }) }), true],
    ['the broker answer SASL_AUTHENTICATION_FAILED (58)', () => brokerAnswer('SASL_AUTHENTICATION_FAILED', 58), true],
    ['UNSUPPORTED_SASL_MECHANISM (33): a configuration mismatch, not rotated credentials', () => brokerAnswer('UNSUPPORTED_SASL_MECHANISM', 33), false],
    ['a connection error', () => construct('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED 127.0.0.1:9096', { broker: '127.0.0.1:9096', code: 'ECONNREFUSED' }), false],
    ['retries exhausted on a connection error', () => construct('KafkaJSNumberOfRetriesExceeded', 'Connection error', { retryCount: 5, retryTime: 1000, cause: new Error('ECONNREFUSED') }), false],
    ['a plain error', () => new Error('boom'), false],
    ['not an error', () => 'SASL_AUTHENTICATION_FAILED', false],
  ];
  for (const [description, error, expected] of cases) {
    it(`${expected ? 'recognises' : 'does not take'} ${description}`, () => {
      assert.equal(isAuthenticationFailure(error()), expected);
    });
  }

  it('stops on a cause cycle', () => {
    const first = new Error('first') as Error & { cause?: unknown };
    const second = new Error('second', { cause: first });
    first.cause = second;
    assert.equal(isAuthenticationFailure(first), false);
  });
});
