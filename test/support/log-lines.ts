/**
 * The one log sink of the tests (after pino's `test/helper.js` `sink()`): a logger built as the
 * agent builds its own, whose JSON lines a test reads back as data, in the order they were written.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import type { Logger } from '../../src/log.js';

/** One emitted log line, parsed. */
export type LogLine = Record<string, unknown>;

export interface CapturedLogs {
  logger: Logger;
  /** Every line so far, parsed. */
  lines: LogLine[];
  /** The same lines as written (no trailing newline): to look for text a parse would hide, such as a secret or a key written twice. */
  raw: string[];
  /** Everything written so far, as one string. */
  text(): string;
}

/**
 * A logger at `level` (default debug) writing into memory. A line that is not JSON fails the test
 * at once: the agent writes nothing else.
 */
export function capturingLogger(level: 'trace' | 'debug' | 'info' = 'debug'): CapturedLogs {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  // A write may in principle end mid-line: keep the rest for the next one.
  let pending = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        if (line.trim() === '') continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines, raw, text: () => raw.map((line) => `${line}\n`).join('') + pending };
}
