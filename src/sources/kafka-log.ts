/**
 * kafkajs log lines into the agent's pino logger, one level quieter: kafkajs' info is chatty.
 * SPEC §9: the Kafka password never reaches a log line. kafkajs 2.2 logs broker addresses, request
 * names and error texts, not its SASL options; this module makes sure of it whatever a version logs:
 * SASL and TLS options and password-like fields are dropped, and the client's own secrets are cut
 * out of every text, the message included.
 */
import { logLevel } from 'kafkajs';
import type { LogEntry, logCreator } from 'kafkajs';
import type { Logger } from '../log.js';

export interface KafkaLogOptions {
  /** Values that must never appear in a line: the SASL password of the client being logged. */
  secrets?: readonly string[];
}

const REDACTED = '[redacted]';
/** Fields whose whole value may carry credentials or key material. */
const DROPPED_FIELD = /^(sasl|ssl|authBytes|authenticationProvider|oauthBearerProvider)$|password|passphrase|secret|token/i;
/** kafkajs fields are flat with a level or two of nesting (`data` of a response); deeper is cut. */
const MAX_DEPTH = 4;

function scrubText(text: string, secrets: readonly string[]): string {
  let scrubbed = text;
  for (const secret of secrets) if (scrubbed.includes(secret)) scrubbed = scrubbed.split(secret).join(REDACTED);
  return scrubbed;
}

function scrub(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return scrubText(value, secrets);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return '[truncated]';
  if (Buffer.isBuffer(value)) return { type: 'Buffer', length: value.length };
  if (Array.isArray(value)) return value.map((item) => scrub(item, secrets, depth + 1));
  if (value instanceof Error) return scrubText(value.message, secrets);
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    copy[key] = DROPPED_FIELD.test(key) ? REDACTED : scrub(field, secrets, depth + 1);
  }
  return copy;
}

/** The fields and message of one kafkajs entry, safe to log. Exported for its test. */
export function sanitizeKafkaLog(log: LogEntry['log'], secrets: readonly string[] = []): { message: string; fields: Record<string, unknown> } {
  const { message, ...fields } = log as Record<string, unknown>;
  delete fields.timestamp;
  delete fields.logger;
  const usable = secrets.filter((secret) => secret !== '');
  return { message: scrubText(String(message), usable), fields: scrub(fields, usable, 0) as Record<string, unknown> };
}

export function kafkaLogCreator(logger: Logger, options: KafkaLogOptions = {}): logCreator {
  const kafkaLogger = logger.child({ stage: 'kafkajs' });
  const secrets = options.secrets ?? [];
  return () => ({ level, log }) => {
    const { message, fields } = sanitizeKafkaLog(log, secrets);
    switch (level) {
      case logLevel.ERROR:
        kafkaLogger.error(fields, message);
        break;
      case logLevel.WARN:
        kafkaLogger.warn(fields, message);
        break;
      case logLevel.INFO:
        kafkaLogger.debug(fields, message);
        break;
      default:
        kafkaLogger.trace(fields, message);
    }
  };
}

/** The kafkajs level matching the agent's: everything at debug, errors and warnings otherwise. */
export function kafkaLogLevel(agentLevel: string): logLevel {
  if (agentLevel === 'trace' || agentLevel === 'debug') return logLevel.DEBUG;
  if (agentLevel === 'silent' || agentLevel === 'fatal') return logLevel.NOTHING;
  return logLevel.WARN;
}
