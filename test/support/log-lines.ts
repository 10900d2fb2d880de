/** A logger whose JSON lines a test reads back, parsed, in the order they were written. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import type { Logger } from '../../src/log.js';

export function capturingLogger(level: 'trace' | 'debug' | 'info' = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
