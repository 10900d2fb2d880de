/**
 * Validates a payload-mapping file and compiles every expression once, at start. Errors name the
 * mapping's index, the field and the expression, so an operator can fix the file.
 *
 * The official agent compiles jq each time it evaluates, and turns an expression jq refuses into
 * null: a file with one (its own test file has `enabled: ".payload.non-existing-field"`) runs there
 * with that mapping never matching. `compileMappingsTolerating` does the same for such files: the
 * expression is kept as an uncompiled one that yields null, and reported so the agent can say so.
 */
import { MappingError, describeError } from '../errors.js';
import { isPlainObject } from '../shared/json-shape.js';
import { ExpressionSyntaxError } from './expression.js';
import type { Expression, ExpressionCompiler } from './expression.js';
import { REPORT_FIELDS } from './types.js';
import type { CompiledMapping, ReportField, Template } from './types.js';

const REQUEST_FIELDS = ['url', 'method', 'headers', 'body', 'query'] as const;
const KNOWN_FIELDS = new Set<string>(['enabled', ...REQUEST_FIELDS, 'report', 'fieldsToDecryptPaths']);

/** Receives an expression that does not compile; throwing it makes compilation strict. */
type OnUncompiled = (error: MappingError) => void;

const throwIt: OnUncompiled = (error) => {
  throw error;
};

/** What an expression that does not compile yields, as in the official agent: null. */
function uncompiledExpression(source: string): Expression {
  return { source, evaluate: () => Promise.resolve(null) };
}

function compileExpression(source: string, compiler: ExpressionCompiler, index: number, field: string, onUncompiled: OnUncompiled): Expression {
  try {
    return compiler.compile(source);
  } catch (error) {
    const refused = new MappingError(`Mapping ${index}, field "${field}": the ${compiler.dialect} expression ${JSON.stringify(source)} does not compile: ${describeError(error)}`, {
      mappingIndex: index,
      field,
      expression: source,
      cause: error,
    });
    // Only the language refusing the expression may be tolerated: jq not running at all is not that.
    if (!(error instanceof ExpressionSyntaxError)) throw refused;
    onUncompiled(refused);
    return uncompiledExpression(source);
  }
}

function compileTemplate(value: unknown, compiler: ExpressionCompiler, index: number, field: string, onUncompiled: OnUncompiled): Template {
  if (typeof value === 'string') return { kind: 'expression', expression: compileExpression(value, compiler, index, field, onUncompiled) };
  if (Array.isArray(value)) {
    return { kind: 'array', items: value.map((item, position) => compileTemplate(item, compiler, index, `${field}[${position}]`, onUncompiled)) };
  }
  if (isPlainObject(value)) {
    return {
      kind: 'object',
      entries: Object.entries(value).map(([key, child]) => [key, compileTemplate(child, compiler, index, `${field}.${key}`, onUncompiled)]),
    };
  }
  return { kind: 'literal', value };
}

function fieldError(index: number, field: string, problem: string): MappingError {
  return new MappingError(`Mapping ${index}, field "${field}": ${problem}`, { mappingIndex: index, field });
}

function compileEnabled(value: unknown, compiler: ExpressionCompiler, index: number, onUncompiled: OnUncompiled): CompiledMapping['enabled'] {
  // SPEC §5: absent means enabled; "true"/"false" strings count as booleans.
  if (value === undefined || value === true || value === 'true') return { kind: 'always', value: true };
  if (value === false || value === 'false') return { kind: 'always', value: false };
  if (typeof value !== 'string') throw fieldError(index, 'enabled', 'must be a boolean or an expression string');
  const template = compileTemplate(value, compiler, index, 'enabled', onUncompiled);
  if (template.kind !== 'expression') throw fieldError(index, 'enabled', 'must be a boolean or an expression string');
  return { kind: 'expression', expression: template.expression };
}

function compileOne(raw: unknown, compiler: ExpressionCompiler, index: number, onUncompiled: OnUncompiled): CompiledMapping {
  if (!isPlainObject(raw)) throw new MappingError(`Mapping ${index} must be an object`, { mappingIndex: index });
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw fieldError(index, key, `unknown field (expected one of ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  const mapping: CompiledMapping = {
    index,
    enabled: compileEnabled(raw.enabled, compiler, index, onUncompiled),
    report: {},
    fieldsToDecryptPaths: [],
  };
  for (const field of ['url', 'method'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw fieldError(index, field, 'must be an expression string');
    mapping[field] = compileTemplate(value, compiler, index, field, onUncompiled);
  }
  for (const field of ['headers', 'query'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' && !isPlainObject(value)) throw fieldError(index, field, 'must be an object or an expression string');
    mapping[field] = compileTemplate(value, compiler, index, field, onUncompiled);
  }
  if (raw.body !== undefined) mapping.body = compileTemplate(raw.body, compiler, index, 'body', onUncompiled);

  if (raw.report !== undefined) {
    if (!isPlainObject(raw.report)) throw fieldError(index, 'report', 'must be an object');
    for (const [key, value] of Object.entries(raw.report)) {
      if (!(REPORT_FIELDS as readonly string[]).includes(key)) {
        throw fieldError(index, `report.${key}`, `unknown report field (expected one of ${REPORT_FIELDS.join(', ')})`);
      }
      mapping.report[key as ReportField] = compileTemplate(value, compiler, index, `report.${key}`, onUncompiled);
    }
  }

  const paths = raw.fieldsToDecryptPaths;
  if (paths !== undefined) {
    if (!Array.isArray(paths) || !paths.every((path) => typeof path === 'string' && path.trim() !== '')) {
      throw fieldError(index, 'fieldsToDecryptPaths', 'must be a list of dotted paths');
    }
    mapping.fieldsToDecryptPaths = paths as string[];
  }
  return mapping;
}

function compileAll(raw: unknown, compiler: ExpressionCompiler, onUncompiled: OnUncompiled): CompiledMapping[] {
  if (!Array.isArray(raw)) throw new MappingError('The payload mapping must be a JSON list of mappings');
  return raw.map((entry, index) => compileOne(entry, compiler, index, onUncompiled));
}

/** @throws MappingError on the first mistake, an expression that does not compile included. */
export function compileMappings(raw: unknown, compiler: ExpressionCompiler): CompiledMapping[] {
  return compileAll(raw, compiler, throwIt);
}

export interface TolerantCompilation {
  mappings: CompiledMapping[];
  /** Every expression that does not compile, in file order; each evaluates to null. */
  uncompiled: MappingError[];
}

/** @throws MappingError for a mistake in the file's shape (not a list, an unknown field, a wrong type). */
export function compileMappingsTolerating(raw: unknown, compiler: ExpressionCompiler): TolerantCompilation {
  const uncompiled: MappingError[] = [];
  const mappings = compileAll(raw, compiler, (error) => uncompiled.push(error));
  return { mappings, uncompiled };
}
