import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logLevel } from 'kafkajs';
import type { LogEntry } from 'kafkajs';
import { capturingLogger } from '../../test/support/log-lines.js';
import { kafkaLogCreator, kafkaLogLevel, sanitizeKafkaLog } from './kafka-log.js';

const PASSWORD = 's3cr3t-Kafka-pa55';

function entry(level: logLevel, log: Record<string, unknown>): LogEntry {
  return { namespace: 'Connection', level, label: 'ERROR', log: { timestamp: '2024-01-01T00:00:00.000Z', message: 'm', ...log } };
}

describe('kafkajs log lines', () => {
  it('never carries SASL options, TLS options or password fields, at any depth', () => {
    const { logger, raw, lines } = capturingLogger('trace');
    const log = kafkaLogCreator(logger, { secrets: [PASSWORD] })(logLevel.DEBUG);
    log(
      entry(logLevel.ERROR, {
        message: 'Connecting',
        broker: 'b1:9096',
        sasl: { mechanism: 'scram-sha-512', username: 'user', password: PASSWORD },
        ssl: { ca: ['-----BEGIN CERTIFICATE-----'], key: 'private', passphrase: PASSWORD },
        request: { options: { sasl: { password: PASSWORD } }, authBytes: Buffer.from(`\0user\0${PASSWORD}`) },
        data: { saslPassword: PASSWORD, credentials: { password: PASSWORD }, nested: [{ password: PASSWORD }] },
      }),
    );
    assert.equal(raw.length, 1);
    assert.ok(!raw[0]?.includes(PASSWORD), raw[0]);
    assert.equal(lines[0]?.broker, 'b1:9096', 'the useful fields stay');
    assert.equal(lines[0]?.msg, 'Connecting');
    assert.equal(lines[0]?.sasl, '[redacted]');
    assert.equal(lines[0]?.ssl, '[redacted]');
  });

  it('cuts the password out of the message, error texts and stacks', () => {
    const { logger, raw } = capturingLogger('trace');
    const log = kafkaLogCreator(logger, { secrets: [PASSWORD] })(logLevel.DEBUG);
    log(entry(logLevel.ERROR, { message: `SASL PLAIN authentication failed for ${PASSWORD}`, error: `bad ${PASSWORD}`, stack: `Error: ${PASSWORD}\n    at x`, cause: new Error(`inner ${PASSWORD}`) }));
    log(entry(logLevel.WARN, { message: 'warn', list: [PASSWORD, `x${PASSWORD}x`] }));
    log(entry(logLevel.INFO, { message: PASSWORD }));
    log(entry(logLevel.DEBUG, { message: 'debug', retry: { detail: { deeper: { deepest: { value: PASSWORD } } } } }));
    assert.equal(raw.length, 4);
    for (const line of raw) assert.ok(!line.includes(PASSWORD), line);
    assert.match(raw[0] ?? '', /SASL PLAIN authentication failed for \[redacted\]/);
  });

  it('maps kafkajs levels one quieter and drops kafkajs timestamp and logger fields', () => {
    const { logger, lines } = capturingLogger('trace');
    const log = kafkaLogCreator(logger)(logLevel.DEBUG);
    for (const level of [logLevel.ERROR, logLevel.WARN, logLevel.INFO, logLevel.DEBUG]) log(entry(level, { logger: 'kafkajs' }));
    assert.deepEqual(
      lines.map((line) => line.level),
      ['error', 'warn', 'debug', 'trace'],
    );
    assert.ok(lines.every((line) => line.stage === 'kafkajs' && !('logger' in line) && line.time !== '2024-01-01T00:00:00.000Z'));
  });

  it('keeps ordinary fields as they are', () => {
    assert.deepEqual(sanitizeKafkaLog({ timestamp: 't', message: 'Response Metadata(key: 3, version: 2)', broker: 'b1:9096', correlationId: 4, size: 120 }), {
      message: 'Response Metadata(key: 3, version: 2)',
      fields: { broker: 'b1:9096', correlationId: 4, size: 120 },
    });
  });

  it('follows the agent level: debug shows kafkajs debug, info shows warnings and errors', () => {
    assert.equal(kafkaLogLevel('debug'), logLevel.DEBUG);
    assert.equal(kafkaLogLevel('info'), logLevel.WARN);
    assert.equal(kafkaLogLevel('silent'), logLevel.NOTHING);
  });
});
