/**
 * Evaluates compiled mappings for one message (SPEC §5): which mapping applies, the request it
 * renders, and the report fields it sets. Pure apart from expression evaluation; nothing is
 * compiled here.
 */
import { MappingError, describeError } from '../errors.js';
import { isPlainObject } from '../shared/json-shape.js';
import type { CompiledMapping, ReportOverrides, RequestSpec, Template } from './types.js';
import { isHeaderName, isHeaderValue } from '../shared/http-header-rules.js';

export interface RequestDefaults {
  url: unknown;
  method: unknown;
  body: unknown;
  headers: Record<string, string>;
}

export interface ReportContext {
  body: unknown;
  request: RequestSpec;
  response: { statusCode: number; headers: Record<string, string>; text: string; json: unknown };
}

export interface Mapper {
  /** The first mapping whose `enabled` is true for the message, if any. */
  select(message: unknown): Promise<CompiledMapping | undefined>;
  renderRequest(mapping: CompiledMapping, message: unknown, defaults: RequestDefaults): Promise<RequestSpec>;
  renderReport(mapping: CompiledMapping, context: ReportContext): Promise<ReportOverrides>;
}

const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

async function evaluateTemplate(template: Template, input: unknown, mapping: CompiledMapping, field: string): Promise<unknown> {
  switch (template.kind) {
    case 'literal':
      return template.value;
    case 'expression':
      try {
        // jq yields null where JSONata yields nothing; null keeps rendered objects identical.
        return (await template.expression.evaluate(input)) ?? null;
      } catch (error) {
        throw new MappingError(`Mapping ${mapping.index}, field "${field}": the expression failed: ${describeError(error)}`, {
          mappingIndex: mapping.index,
          field,
          expression: template.expression.source,
          cause: error,
        });
      }
    case 'array':
      return Promise.all(template.items.map((item, position) => evaluateTemplate(item, input, mapping, `${field}[${position}]`)));
    case 'object': {
      const values = await Promise.all(template.entries.map(([key, child]) => evaluateTemplate(child, input, mapping, `${field}.${key}`)));
      const result: Record<string, unknown> = {};
      template.entries.forEach(([key], position) => {
        Object.defineProperty(result, key, { value: values[position], enumerable: true, writable: true, configurable: true });
      });
      return result;
    }
  }
}

function invalid(mapping: CompiledMapping, field: string, problem: string): MappingError {
  return new MappingError(`Mapping ${mapping.index}, field "${field}": ${problem}`, { mappingIndex: mapping.index, field });
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** Header values must be text; null drops the header, as the official agent's HTTP library does. */
function toHeaders(value: unknown, mapping: CompiledMapping, field: string): Record<string, string> {
  if (value === null) return {};
  if (!isPlainObject(value)) throw invalid(mapping, field, 'must evaluate to an object');
  const headers: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (raw === null || raw === undefined) continue;
    const text = scalarText(raw);
    if (text === undefined) throw invalid(mapping, `${field}.${name}`, 'must evaluate to a string, number or boolean');
    if (!isHeaderName(name) || !isHeaderValue(text)) {
      throw invalid(mapping, `${field}.${name}`, 'is not a valid HTTP header (name, line breaks, control or non-Latin-1 characters)');
    }
    headers[name] = text;
  }
  return headers;
}

function toQuery(value: unknown, mapping: CompiledMapping): Record<string, string | string[]> {
  if (value === null) return {};
  if (!isPlainObject(value)) throw invalid(mapping, 'query', 'must evaluate to an object');
  const query: Record<string, string | string[]> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (raw === null || raw === undefined) continue;
    if (Array.isArray(raw)) {
      const items = raw.map(scalarText);
      if (items.some((item) => item === undefined)) throw invalid(mapping, `query.${name}`, 'list items must be strings, numbers or booleans');
      query[name] = items as string[];
      continue;
    }
    const text = scalarText(raw);
    if (text === undefined) throw invalid(mapping, `query.${name}`, 'must evaluate to a string, number, boolean or a list of them');
    query[name] = text;
  }
  return query;
}

/** Later headers win over earlier ones whatever their case (HTTP header names are case-insensitive). */
function mergeHeaders(base: Record<string, string>, override: Record<string, string>): Record<string, string> {
  const merged: Record<string, string> = { ...base };
  for (const [name, value] of Object.entries(override)) {
    for (const existing of Object.keys(merged)) if (existing.toLowerCase() === name.toLowerCase()) delete merged[existing];
    merged[name] = value;
  }
  return merged;
}

export function createMapper(mappings: readonly CompiledMapping[]): Mapper {
  return {
    async select(message) {
      for (const mapping of mappings) {
        if (mapping.enabled.kind === 'always') {
          if (mapping.enabled.value) return mapping;
          continue;
        }
        // SPEC §5: only exactly `true` enables; a truthy value does not.
        const result = await evaluateTemplate({ kind: 'expression', expression: mapping.enabled.expression }, message, mapping, 'enabled');
        if (result === true) return mapping;
      }
      return undefined;
    },

    async renderRequest(mapping, message, defaults) {
      const evaluate = (template: Template | undefined, field: string, fallback: unknown) =>
        template === undefined ? Promise.resolve(fallback) : evaluateTemplate(template, message, mapping, field);
      const [url, method, headers, query, body] = await Promise.all([
        evaluate(mapping.url, 'url', defaults.url),
        evaluate(mapping.method, 'method', defaults.method),
        evaluate(mapping.headers, 'headers', {}),
        evaluate(mapping.query, 'query', {}),
        evaluate(mapping.body, 'body', defaults.body),
      ]);
      if (typeof url !== 'string' || url.trim() === '') throw invalid(mapping, 'url', 'no URL to send the request to (the URL is empty or missing)');
      const methodName = typeof method === 'string' ? method.trim().toUpperCase() : '';
      if (!HTTP_METHODS.has(methodName)) {
        throw invalid(mapping, 'method', `must be one of ${[...HTTP_METHODS].join(', ')} (got ${JSON.stringify(method) ?? 'nothing'})`);
      }
      return {
        method: methodName,
        url: url.trim(),
        headers: mergeHeaders(defaults.headers, toHeaders(headers, mapping, 'headers')),
        query: toQuery(query, mapping),
        body: body === null ? undefined : body,
      };
    },

    async renderReport(mapping, context) {
      const overrides: ReportOverrides = {};
      for (const [field, template] of Object.entries(mapping.report)) {
        if (template) overrides[field as keyof ReportOverrides] = await evaluateTemplate(template, context, mapping, `report.${field}`);
      }
      return overrides;
    },
  };
}
