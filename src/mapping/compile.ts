/**
 * Validates a payload-mapping file (SPEC §5) and compiles every expression once, at start. Errors
 * name the mapping's index, the field and the expression, so an operator can fix the file.
 */
import { MappingError, describeError } from '../errors.js';
import { isPlainObject } from '../json-shape.js';
import type { ExpressionCompiler } from './expression.js';
import { REPORT_FIELDS } from './types.js';
import type { CompiledMapping, ReportField, Template } from './types.js';

const REQUEST_FIELDS = ['url', 'method', 'headers', 'body', 'query'] as const;
const KNOWN_FIELDS = new Set<string>(['enabled', ...REQUEST_FIELDS, 'report', 'fieldsToDecryptPaths']);

function compileTemplate(value: unknown, compiler: ExpressionCompiler, index: number, field: string): Template {
  if (typeof value === 'string') {
    try {
      return { kind: 'expression', expression: compiler.compile(value) };
    } catch (error) {
      throw new MappingError(
        `Mapping ${index}, field "${field}": the ${compiler.dialect} expression ${JSON.stringify(value)} does not compile: ${describeError(error)}`,
        { mappingIndex: index, field, expression: value, cause: error },
      );
    }
  }
  if (Array.isArray(value)) {
    return { kind: 'array', items: value.map((item, position) => compileTemplate(item, compiler, index, `${field}[${position}]`)) };
  }
  if (isPlainObject(value)) {
    return {
      kind: 'object',
      entries: Object.entries(value).map(([key, child]) => [key, compileTemplate(child, compiler, index, `${field}.${key}`)]),
    };
  }
  return { kind: 'literal', value };
}

function fieldError(index: number, field: string, problem: string): MappingError {
  return new MappingError(`Mapping ${index}, field "${field}": ${problem}`, { mappingIndex: index, field });
}

function compileEnabled(value: unknown, compiler: ExpressionCompiler, index: number): CompiledMapping['enabled'] {
  // SPEC §5: absent means enabled; "true"/"false" strings count as booleans.
  if (value === undefined || value === true || value === 'true') return { kind: 'always', value: true };
  if (value === false || value === 'false') return { kind: 'always', value: false };
  if (typeof value !== 'string') throw fieldError(index, 'enabled', 'must be a boolean or an expression string');
  const template = compileTemplate(value, compiler, index, 'enabled');
  if (template.kind !== 'expression') throw fieldError(index, 'enabled', 'must be a boolean or an expression string');
  return { kind: 'expression', expression: template.expression };
}

function compileOne(raw: unknown, compiler: ExpressionCompiler, index: number): CompiledMapping {
  if (!isPlainObject(raw)) throw new MappingError(`Mapping ${index} must be an object`, { mappingIndex: index });
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw fieldError(index, key, `unknown field (expected one of ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  const mapping: CompiledMapping = {
    index,
    enabled: compileEnabled(raw.enabled, compiler, index),
    report: {},
    fieldsToDecryptPaths: [],
  };
  for (const field of ['url', 'method'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw fieldError(index, field, 'must be an expression string');
    mapping[field] = compileTemplate(value, compiler, index, field);
  }
  for (const field of ['headers', 'query'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' && !isPlainObject(value)) throw fieldError(index, field, 'must be an object or an expression string');
    mapping[field] = compileTemplate(value, compiler, index, field);
  }
  if (raw.body !== undefined) mapping.body = compileTemplate(raw.body, compiler, index, 'body');

  if (raw.report !== undefined) {
    if (!isPlainObject(raw.report)) throw fieldError(index, 'report', 'must be an object');
    for (const [key, value] of Object.entries(raw.report)) {
      if (!(REPORT_FIELDS as readonly string[]).includes(key)) {
        throw fieldError(index, `report.${key}`, `unknown report field (expected one of ${REPORT_FIELDS.join(', ')})`);
      }
      mapping.report[key as ReportField] = compileTemplate(value, compiler, index, `report.${key}`);
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

export function compileMappings(raw: unknown, compiler: ExpressionCompiler): CompiledMapping[] {
  if (!Array.isArray(raw)) throw new MappingError('The payload mapping must be a JSON list of mappings');
  return raw.map((entry, index) => compileOne(entry, compiler, index));
}
