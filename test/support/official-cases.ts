/**
 * The official agent's own test cases (test/fixtures/official-agent-cases.json), typed: what each
 * feeds the agent, what the service must receive and what Port must end up with.
 */
import { readFileSync } from 'node:fs';

export interface PortCall {
  method: string;
  path: string;
  body?: unknown;
  headers_must_include?: Record<string, string>;
}

export interface ExpectedRequest {
  method: string;
  url: string;
  query: Record<string, string>;
  headers_must_include: Record<string, string>;
  body: unknown;
  body_compact: string;
}

export interface OfficialCase {
  name: string;
  mapping_file: string;
  env: Record<string, string>;
  input: {
    topic?: string;
    kafka_value?: string;
    signature_valid?: boolean | string;
    port_api_stub?: Record<string, unknown>;
  };
  webhook_stub_response: { status: number; content_type: string; body_text: string } | null;
  expected_request: ExpectedRequest | null;
  expected_port_api_calls?: PortCall[];
  expected_port_api_calls_v0_8_9?: PortCall[];
  expected_port_api_calls_branch_after_v0_8_9?: PortCall[];
  official_port_api_calls?: PortCall[];
  notes?: string;
}

interface CasesFile {
  mapping_files: Record<string, unknown>;
  cases: OfficialCase[];
}

const file = JSON.parse(readFileSync(new URL('../fixtures/official-agent-cases.json', import.meta.url), 'utf8')) as CasesFile;

export const officialCases: readonly OfficialCase[] = file.cases;

/** A mapping file of the cases, by its name in `mapping_files` (`official_default`, …). */
export function officialMappingFile(name: string): unknown {
  const mapping = file.mapping_files[name];
  if (mapping === undefined) throw new Error(`no mapping file ${name} in official-agent-cases.json`);
  return mapping;
}
