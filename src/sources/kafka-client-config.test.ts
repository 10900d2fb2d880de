import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { describe, it } from 'node:test';
import { AUTHENTICATION_MECHANISMS, SECURITY_PROTOCOLS } from '../config/schema.js';
import { AgentError, ConfigError } from '../errors.js';
import { kafkaSecurity } from '../config/kafka-security.js';
import { kafkaConnection } from './kafka-client-config.js';
import type { KafkaConnection, KafkaCredentials } from './kafka-client-config.js';

const PASSWORD = 'pa55-w0rd-from-port';
const USERNAME = 'org-42-agent';
const credentials: KafkaCredentials = { brokers: ['b1:9096', 'b2:9096'], username: USERNAME, password: PASSWORD };

type Protocol = (typeof SECURITY_PROTOCOLS)[number];
type Mechanism = (typeof AUTHENTICATION_MECHANISMS)[number];

/** What each combination must give (SPEC §1, §2); a string is the variable a ConfigError names. */
function expected(protocol: Protocol, mechanism: Mechanism): KafkaConnection | string {
  const ssl = protocol === 'SSL' || protocol === 'SASL_SSL';
  if (protocol === 'PLAINTEXT' || protocol === 'SSL') return { brokers: credentials.brokers, ssl };
  if (mechanism === 'NONE') return 'KAFKA_CONSUMER_AUTHENTICATION_MECHANISM';
  const sasl = { mechanism: mechanism.toLowerCase(), username: USERNAME, password: PASSWORD };
  return { brokers: credentials.brokers, ssl, sasl } as KafkaConnection;
}

describe('kafkaConnection for Port-hosted Kafka', () => {
  for (const protocol of SECURITY_PROTOCOLS) {
    for (const mechanism of AUTHENTICATION_MECHANISMS) {
      const want = expected(protocol, mechanism);
      const settings = { securityProtocol: protocol, authenticationMechanism: mechanism, useLocalPortInstance: false };
      if (typeof want === 'string') {
        it(`rejects ${protocol} with mechanism ${mechanism} as a configuration error naming ${want}`, () => {
          assert.throws(
            () => kafkaSecurity(settings),
            (error: unknown) => error instanceof ConfigError && error.variable === want && error.message.includes(want) && error.message.includes(protocol),
          );
        });
      } else {
        it(`${protocol} with mechanism ${mechanism}: TLS ${String(want.ssl)}, ${want.sasl ? `SASL ${want.sasl.mechanism}` : 'no SASL'}`, () => {
          assert.deepEqual(kafkaConnection(kafkaSecurity(settings), credentials), want);
        });
      }
    }
  }

  it('uses SCRAM-SHA-512 over TLS with the chart\'s settings, carrying the fetched password', () => {
    const connection = kafkaConnection(kafkaSecurity({ securityProtocol: 'SASL_SSL', authenticationMechanism: 'SCRAM-SHA-512', useLocalPortInstance: false }), credentials);
    assert.equal(connection.ssl, true, 'ssl: true trusts the bundled Mozilla CAs and NODE_EXTRA_CA_CERTS');
    assert.deepEqual(connection.sasl, { mechanism: 'scram-sha-512', username: USERNAME, password: PASSWORD });
  });

  for (const protocol of SECURITY_PROTOCOLS) {
    const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
    it(`${usesTls ? 'verifies brokers against' : 'does not use'} the trusted CAs' shared context with ${protocol}`, () => {
      const secureContext = createSecureContext();
      const security = kafkaSecurity({ securityProtocol: protocol, authenticationMechanism: 'SCRAM-SHA-512', useLocalPortInstance: false });
      const connection = kafkaConnection(security, credentials, secureContext);
      assert.deepEqual(connection.ssl, usesTls ? { secureContext } : false);
      if (usesTls) assert.equal((connection.ssl as unknown as { secureContext?: unknown }).secureContext, secureContext, 'the one context, not a copy');
    });
  }

  for (const missing of ['username', 'password'] as const) {
    for (const value of [undefined, '']) {
      it(`refuses SASL credentials whose ${missing} is ${value === undefined ? 'absent' : 'empty'}, naming what is missing and no secret`, () => {
        const security = kafkaSecurity({ securityProtocol: 'SASL_SSL', authenticationMechanism: 'PLAIN', useLocalPortInstance: false });
        assert.throws(
          () => kafkaConnection(security, { ...credentials, [missing]: value }),
          (error: unknown) =>
            error instanceof AgentError &&
            !(error instanceof ConfigError) &&
            error.retriable &&
            error.message.includes(missing) &&
            !error.message.includes(PASSWORD) &&
            !error.message.includes(USERNAME),
        );
      });
    }
  }
});

describe('kafkaSecurity with USING_LOCAL_PORT_INSTANCE=true', () => {
  for (const protocol of ['PLAINTEXT', 'SSL'] as const) {
    it(`accepts ${protocol}: the brokers need no credentials`, () => {
      const security = kafkaSecurity({ securityProtocol: protocol, authenticationMechanism: 'NONE', useLocalPortInstance: true });
      assert.deepEqual(kafkaConnection(security, { brokers: ['local:9092'], username: undefined, password: undefined }), { brokers: ['local:9092'], ssl: protocol === 'SSL' });
    });
  }

  for (const protocol of ['SASL_PLAINTEXT', 'SASL_SSL'] as const) {
    it(`rejects ${protocol}: no variable carries a SASL username or password, only Port does`, () => {
      assert.throws(
        () => kafkaSecurity({ securityProtocol: protocol, authenticationMechanism: 'SCRAM-SHA-512', useLocalPortInstance: true }),
        (error: unknown) => error instanceof ConfigError && error.variable === 'KAFKA_CONSUMER_SECURITY_PROTOCOL' && /USING_LOCAL_PORT_INSTANCE=true/.test(error.message),
      );
    });
  }
});
