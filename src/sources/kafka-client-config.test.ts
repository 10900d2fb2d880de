import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { kafkaConnection } from './kafka-client-config.js';

const credentials = { brokers: ['b1:9096', 'b2:9096'], username: 'user', password: 'pass' };

describe('kafkaConnection', () => {
  it('uses plain TCP without SASL for plaintext', () => {
    assert.deepEqual(kafkaConnection({ securityProtocol: 'PLAINTEXT', authenticationMechanism: 'NONE' }, credentials), { brokers: credentials.brokers, ssl: false });
  });

  it('uses TLS without SASL for ssl', () => {
    assert.deepEqual(kafkaConnection({ securityProtocol: 'SSL', authenticationMechanism: 'NONE' }, credentials), { brokers: credentials.brokers, ssl: true });
  });

  for (const [mechanism, expected] of [['SCRAM-SHA-512', 'scram-sha-512'], ['SCRAM-SHA-256', 'scram-sha-256'], ['PLAIN', 'plain']] as const) {
    it(`uses TLS and SASL ${mechanism} for sasl_ssl, as Port's brokers need`, () => {
      assert.deepEqual(kafkaConnection({ securityProtocol: 'SASL_SSL', authenticationMechanism: mechanism }, credentials), {
        brokers: credentials.brokers,
        ssl: true,
        sasl: { mechanism: expected, username: 'user', password: 'pass' },
      });
    });
  }

  it('uses SASL without TLS for sasl_plaintext', () => {
    const connection = kafkaConnection({ securityProtocol: 'SASL_PLAINTEXT', authenticationMechanism: 'PLAIN' }, credentials);
    assert.equal(connection.ssl, false);
    assert.equal((connection.sasl as { mechanism: string }).mechanism, 'plain');
  });

  it('rejects SASL without a mechanism as a configuration error', () => {
    assert.throws(() => kafkaConnection({ securityProtocol: 'SASL_SSL', authenticationMechanism: 'NONE' }, credentials), ConfigError);
  });
});
