/** The expression language of a mapping file: JSONata (default) or jq (CONTROL_THE_PAYLOAD_DIALECT). */
import type { MAPPING_DIALECTS } from '../config/schema.js';
import { createJsonataCompiler } from './expression.js';
import type { ExpressionCompiler } from './expression.js';
import { createJqCompiler } from './jq-engine.js';

export type MappingDialect = (typeof MAPPING_DIALECTS)[number];

export interface DialectCompiler extends ExpressionCompiler {
  /** Releases what the dialect holds (jq's process); nothing for JSONata. */
  close(): void;
}

export function createCompiler(dialect: MappingDialect, environment: Readonly<Record<string, string>>): DialectCompiler {
  if (dialect === 'jq') return createJqCompiler({ environment });
  return { ...createJsonataCompiler(environment), close: () => undefined };
}
