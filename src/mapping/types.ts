import type { Expression } from './expression.js';

/** A mapping value compiled once: string leaves are expressions, other leaves pass through. */
export type Template =
  | { kind: 'expression'; expression: Expression }
  | { kind: 'object'; entries: [string, Template][] }
  | { kind: 'array'; items: Template[] }
  | { kind: 'literal'; value: unknown };

export const REPORT_FIELDS = ['status', 'link', 'summary', 'externalRunId'] as const;
export type ReportField = (typeof REPORT_FIELDS)[number];

export interface CompiledMapping {
  /** Position in the mapping file, for error messages. */
  index: number;
  enabled: { kind: 'always'; value: boolean } | { kind: 'expression'; expression: Expression };
  url?: Template;
  method?: Template;
  headers?: Template;
  body?: Template;
  query?: Template;
  report: Partial<Record<ReportField, Template>>;
  fieldsToDecryptPaths: string[];
}

/** The HTTP request a mapping renders for one message. */
export interface RequestSpec {
  method: string;
  url: string;
  headers: Record<string, string>;
  query: Record<string, string | string[]>;
  /** `undefined` sends no body. */
  body: unknown;
}

/** Report fields a mapping set: a present key replaces the default even when its value is null. */
export type ReportOverrides = Partial<Record<ReportField, unknown>>;
