/**
 * The one root logger: pino JSON lines on stdout. Stages take `logger.child({ stage })`, messages
 * `child({ runId, topic, partition, offset })`. Secrets are redacted by key wherever they appear,
 * as a second line of defence: code never puts them in a log call on purpose.
 */
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';
import { SIGNATURE_HEADER } from './shared/port-headers.js';

export type { Logger };

/** SPEC §9: client secret, tokens, Authorization headers, Kafka password never appear. */
export const REDACTED_KEYS = [
  'authorization',
  'Authorization',
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'token',
  'password',
  'PORT_CLIENT_SECRET',
  SIGNATURE_HEADER.toLowerCase(),
  SIGNATURE_HEADER,
];

/**
 * Top level and one level down (`{ headers: { authorization } }`): the agent logs errors as
 * strings and never logs deeper structures. Each wildcard level costs on every line and every
 * child logger — four levels took ~80 µs of CPU per run, a tenth of the agent's budget.
 */
const REDACT_PATHS = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`]);

export function createLogger(options: { level: LevelWithSilent; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { name: 'port-agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    // Synchronous writes: a line logged just before exit (a config error, a crash) is never lost.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
