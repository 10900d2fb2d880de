/**
 * Every KAFKA_CONSUMER_SECURITY_PROTOCOL × KAFKA_CONSUMER_AUTHENTICATION_MECHANISM the agent accepts,
 * live: the kafkajs client the agent's own connector builds (kafkaSecurity → kafkaConnection →
 * createKafkaConnector) produces through a broker that demands exactly that protocol and mechanism,
 * and a wrong password fails with an error the source recognises as an authentication failure.
 *
 * In-process, so each combination takes a fraction of a second (the built agent runs the chart's
 * SASL_SSL + SCRAM-SHA-512 in port-hosted-kafka.test.ts). The brokers: the mock behind a broker
 * front (SASL, address rewriting) and, for TLS, stunnel4 with a CA made for this run — no
 * socketFactory or other hook in the client (see port-hosted-kafka.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import type { Kafka } from 'kafkajs';
import { AUTHENTICATION_MECHANISMS, SECURITY_PROTOCOLS } from '../../src/config/schema.js';
import { kafkaSecurity } from '../../src/config/kafka-security.js';
import type { KafkaSecurity } from '../../src/config/kafka-security.js';
import { createKafkaConnector, isAuthenticationFailure } from '../../src/sources/kafka-connector.js';
import { trustedSecureContext } from '../../src/trust/secure-context.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { startBrokerFronts } from '../support/broker-front.js';
import type { BrokerFronts, SaslMechanismName } from '../support/broker-front.js';
import { disconnectKafkaClients, uniqueName } from '../support/kafka.js';
import { capturingLogger } from '../support/log-lines.js';
import { startTlsTunnel } from '../support/stunnel.js';
import type { TlsTunnel } from '../support/stunnel.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCa } from '../support/test-ca.js';

const USERNAME = 'org-agent';
const PASSWORD = 'live-pa55word';
const SASL_MECHANISMS: readonly SaslMechanismName[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'];

describe('Kafka security settings against brokers that demand them', () => {
  let broker: Broker;
  let ca: TestCa;
  /** SASL fronts reached in plain TCP, and SASL and plain fronts reached over TLS. */
  let saslPlain: BrokerFronts;
  let saslTls: BrokerFronts;
  let tlsOnly: BrokerFronts;
  const tunnels: TlsTunnel[] = [];
  const { logger, text: logText } = capturingLogger('trace');

  before(async () => {
    broker = await startBroker();
    ca = createTestCa();
    const users = { [USERNAME]: PASSWORD };
    saslPlain = await startBrokerFronts(broker.brokers, { saslMechanisms: SASL_MECHANISMS, users });
    saslPlain.advertise(saslPlain.addresses);
    saslTls = await startBrokerFronts(broker.brokers, { saslMechanisms: SASL_MECHANISMS, users });
    tlsOnly = await startBrokerFronts(broker.brokers);
    for (const fronts of [saslTls, tlsOnly]) {
      const tunnel = await startTlsTunnel(fronts.addresses, ca.server);
      tunnels.push(tunnel);
      fronts.advertise(tunnel.addresses);
    }
  });

  after(async () => {
    for (const tunnel of tunnels) await tunnel.close();
    for (const fronts of [saslPlain, saslTls, tlsOnly]) await fronts?.close();
    await disconnectKafkaClients();
    await broker?.stop();
  });

  /** The brokers that speak `security`: the mock itself for PLAINTEXT. */
  function brokersFor(security: KafkaSecurity): { brokers: string[]; fronts: BrokerFronts | undefined } {
    if (security.usesTls) {
      const fronts = security.saslMechanism ? saslTls : tlsOnly;
      return { brokers: tunnels[fronts === saslTls ? 0 : 1]?.addresses ?? [], fronts };
    }
    return security.saslMechanism ? { brokers: saslPlain.addresses, fronts: saslPlain } : { brokers: broker.brokers, fronts: undefined };
  }

  function clientFor(security: KafkaSecurity, password: string): Promise<Kafka> {
    const { brokers } = brokersFor(security);
    return createKafkaConnector({
      security,
      // The test CA as the agent trusts it from a CA folder or file, built into one context.
      secureContext: trustedSecureContext([ca.caPem]),
      credentials: () => Promise.resolve({ brokers, username: USERNAME, password }),
      clientId: uniqueName('security'),
      logLevel: kafkajs.logLevel.DEBUG,
      logger,
    }).client();
  }

  async function produceOne(kafka: Kafka): Promise<void> {
    const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner, retry: { retries: 0 } });
    try {
      await producer.connect();
      await producer.send({ topic: uniqueName('security'), acks: -1, messages: [{ value: 'over the configured protocol' }] });
    } finally {
      await producer.disconnect();
    }
  }

  for (const protocol of SECURITY_PROTOCOLS) {
    for (const mechanism of AUTHENTICATION_MECHANISMS) {
      const settings = { securityProtocol: protocol, authenticationMechanism: mechanism, useLocalPortInstance: false };
      const isValid = !protocol.startsWith('SASL_') || mechanism !== 'NONE';
      if (!isValid) continue; // a configuration error at start: kafka-client-config.test.ts
      it(`${protocol} with ${mechanism}: produces through a broker that demands it`, async () => {
        const security = kafkaSecurity(settings);
        const { fronts } = brokersFor(security);
        const before = fronts?.authentications.length ?? 0;
        await produceOne(await clientFor(security, PASSWORD));
        const authentications = fronts?.authentications.slice(before) ?? [];
        if (security.saslMechanism) {
          assert.ok(authentications.length > 0, 'authenticated');
          assert.ok(authentications.every((entry) => entry.isAccepted && entry.mechanism === mechanism && entry.username === USERNAME));
        } else {
          assert.equal(authentications.length, 0, 'no SASL exchange');
        }
      });
    }
  }

  for (const protocol of ['SASL_PLAINTEXT', 'SASL_SSL'] as const) {
    for (const mechanism of SASL_MECHANISMS) {
      it(`${protocol} with ${mechanism}: a refused password is an authentication failure to the source`, async () => {
        const kafka = await clientFor(kafkaSecurity({ securityProtocol: protocol, authenticationMechanism: mechanism, useLocalPortInstance: false }), 'rotated-away');
        const error = await produceOne(kafka).then(
          () => assert.fail('the broker accepted a wrong password'),
          (thrown: unknown) => thrown,
        );
        assert.equal(isAuthenticationFailure(error), true, String(error));
      });
    }
  }

  it('never logged a password, with kafkajs at debug level', () => {
    const text = logText();
    assert.ok(text.includes('"stage":"kafkajs"'), 'kafkajs did log');
    assert.ok(!text.includes(PASSWORD) && !text.includes('rotated-away'));
  });
});
