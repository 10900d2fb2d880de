/**
 * `port-agent render`: what the agent would send for an event with a mapping file, and what it
 * would report to Port for a given response — without sending anything, and without Kafka or Port
 * credentials. The same stages as the agent: classify, choose, decrypt, render, report plan.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, MappingError, MessageError, describeError } from '../errors.js';
import { headerRecord, parseJsonBody } from '../net/http-client.js';
import { isPlainObject } from '../shared/json-shape.js';
import { compileInDialect } from '../mapping/choose-dialect.js';
import type { DialectSetting } from '../mapping/choose-dialect.js';
import { createCompiler } from '../mapping/dialects.js';
import type { MappingDialect } from '../mapping/dialects.js';
import { createMapper } from '../mapping/render.js';
import { decryptFields, decryptionKey } from '../message/decrypt.js';
import { prepareMessage } from '../message/prepare.js';
import type { Refusal } from '../message/prepare.js';
import type { ServiceResponse } from '../shared/service-response.js';
import { planActionReport, planNodeRunReport } from '../reporting/report-plan.js';

export const RENDER_USAGE =
  'usage: port-agent render --mapping FILE --event FILE [--response FILE] [--dialect auto|jsonata|jq]\n' +
  '  --mapping   a payload mapping file (a JSON list of mappings)\n' +
  '  --event     a message as Port puts it on the runs or change-log topic\n' +
  '  --response  {"statusCode": 200, "headers": {...}, "body": ...} the service would answer (default: 200, empty)\n' +
  '  --dialect   the expression language (default: CONTROL_THE_PAYLOAD_DIALECT, else detected from the file)';

export interface RenderInput {
  mapping: unknown;
  event: Buffer;
  response: unknown;
  /** undefined: detected from the mapping, as the agent does. */
  dialect: DialectSetting | undefined;
  /** What expressions may read as env: the environment without the agent's secrets. */
  environment: Readonly<Record<string, string>>;
  /** Decrypts fieldsToDecryptPaths when given (PORT_CLIENT_SECRET in the environment). */
  clientSecret: string | undefined;
}

/** The dry-run's answer: printed as JSON. */
export interface RenderOutput {
  kind: 'action-run' | 'node-run' | 'changelog' | 'not-for-agent';
  runId: string | null;
  mappingIndex: number | null;
  /** The mapping's expression language, and why (the agent's start-up log line says the same). */
  dialect: MappingDialect;
  dialectReason: string;
  /** Why nothing would be sent, when nothing would. */
  skipped?: string;
  request?: { method: string; url: string; headers: Record<string, string>; query: Record<string, string | string[]>; body: unknown };
  response?: ServiceResponse;
  report?: Record<string, unknown>;
  warnings: string[];
}

function readResponse(raw: unknown): ServiceResponse {
  if (raw === undefined) return { status: 200, headers: {}, headersAsSent: {}, text: '', json: undefined };
  if (!isPlainObject(raw)) throw new ConfigError('the response file must be a JSON object like {"statusCode": 200, "body": {...}}');
  const status = raw.statusCode ?? raw.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new ConfigError('the response file needs a statusCode between 100 and 599');
  }
  const text = raw.body === undefined || raw.body === null ? '' : typeof raw.body === 'string' ? raw.body : JSON.stringify(raw.body);
  return { status, headers: headerRecord(raw.headers), headersAsSent: headerRecord(raw.headers, 'as-given'), text, json: parseJsonBody(text) };
}

/** The dry-run neither verifies signatures nor checks age: an empty event is the drop it meets. */
function dropText(refusal: Refusal): string {
  switch (refusal.reason) {
    case 'no-value':
      return 'the event is not valid JSON: the file is empty';
    case 'invalid-signature':
      return `the event would be dropped: its signature is not valid (${refusal.signatureFailure})`;
    case 'too-old':
      return `the event would be dropped: older than ${refusal.maxAgeMs} ms`;
  }
}

export async function renderDryRun(input: RenderInput): Promise<RenderOutput> {
  const compiled = compileInDialect(input.mapping, input.dialect, (dialect) => createCompiler(dialect, input.environment));
  try {
    const mapper = createMapper(compiled.mappings);
    const response = readResponse(input.response);
    const warnings: string[] = compiled.uncompiled.map((error) => `${error.message}: it yields null, as in the official agent`);
    const dialect = { dialect: compiled.dialect, dialectReason: compiled.reason };
    // As the agent prepares a message, minus what only a broker gives: signature, age, place.
    const prepared = prepareMessage(input.event, { role: 'by-content', claimed: false, verify: undefined, maxMessageBytes: undefined, place: 'render' });
    if (prepared.kind === 'unreadable') {
      throw prepared.stage === 'json' ? new MessageError(`the event is ${prepared.error.message}`, { cause: prepared.error }) : prepared.error;
    }
    if (prepared.kind === 'drop') throw new MessageError(dropText(prepared.refusal));
    if (prepared.kind === 'skip') {
      return { kind: 'not-for-agent', runId: prepared.runId ?? null, mappingIndex: null, ...dialect, skipped: prepared.reason, warnings };
    }
    const { invocationKind: kind, runId, invocationMethod, body: message } = prepared;
    const base = { kind, runId: runId ?? null, ...dialect, warnings };

    const mapping = await mapper.select(message);
    if (!mapping) {
      const skipped = kind === 'node-run' ? 'no mapping matches: the node run would be reported FAILED' : 'no mapping matches: skipped silently';
      return { ...base, mappingIndex: null, skipped, ...(kind === 'node-run' ? { report: { status: 'COMPLETED', result: 'FAILED' } } : {}) };
    }
    let rendered = message;
    if (mapping.fieldsToDecryptPaths.length > 0) {
      const key = input.clientSecret === undefined ? undefined : decryptionKey(input.clientSecret);
      if (key) rendered = decryptFields(message, mapping.fieldsToDecryptPaths, key, ({ path, reason }) => warnings.push(`${path}: not decrypted (${reason})`));
      else warnings.push('fieldsToDecryptPaths not decrypted: set PORT_CLIENT_SECRET (32 bytes or more) to see decrypted values');
    }
    const request = await mapper.renderRequest(mapping, rendered, { url: invocationMethod.url, method: invocationMethod.method ?? 'POST', body: rendered, headers: invocationMethod.headers });
    const output: RenderOutput = {
      ...base,
      mappingIndex: mapping.index,
      // X-Port-Timestamp and X-Port-Signature are added when sending, over the exact body bytes.
      request: { ...request, headers: { 'Content-Type': 'application/json', ...request.headers } },
      response,
    };
    if (kind === 'changelog') return output;
    if (kind === 'node-run') return { ...output, report: { nodeRunPatch: planNodeRunReport(invocationMethod.synchronized, response) ?? null } };
    const overrides = await mapper.renderReport(mapping, {
      body: rendered,
      request,
      response: { statusCode: response.status, headers: response.headersAsSent, text: response.text, json: response.json ?? null },
    });
    const plan = planActionReport(invocationMethod.synchronized, response, overrides, true);
    return { ...output, report: { runResponse: plan.runResponse ?? null, statusPatch: plan.statusPatch ?? null } };
  } finally {
    compiled.compiler.close();
  }
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`cannot read the ${what} file ${path} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`);
  }
}

function readJsonFile(path: string, what: string): unknown {
  try {
    return JSON.parse(readFile(path, what).toString('utf8')) as unknown;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`the ${what} file ${path} is not valid JSON: ${describeError(error)}`);
  }
}

/** Runs the command; resolves with the exit code. Output goes to the given streams. */
export async function runRenderCommand(
  argv: string[],
  environment: Readonly<Record<string, string>>,
  clientSecret: string | undefined,
  defaultDialect: string | undefined,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number> {
  let values: { mapping?: string; event?: string; response?: string; dialect?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { mapping: { type: 'string' }, event: { type: 'string' }, response: { type: 'string' }, dialect: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    io.stderr.write(`port-agent render: ${describeError(error)}\n${RENDER_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(`${RENDER_USAGE}\n`);
    return 0;
  }
  if (!values.mapping || !values.event) {
    io.stderr.write(`port-agent render: --mapping and --event are required\n${RENDER_USAGE}\n`);
    return 2;
  }
  const setting = (values.dialect ?? defaultDialect ?? 'auto').trim().toLowerCase();
  if (setting !== 'auto' && setting !== '' && setting !== 'jsonata' && setting !== 'jq') {
    io.stderr.write(`port-agent render: --dialect must be auto, jsonata or jq (got "${setting}")\n`);
    return 2;
  }
  const dialect: DialectSetting | undefined = setting === 'jsonata' || setting === 'jq' ? { dialect: setting, setBy: values.dialect === undefined ? 'CONTROL_THE_PAYLOAD_DIALECT' : '--dialect' } : undefined;
  try {
    const output = await renderDryRun({
      mapping: readJsonFile(values.mapping, 'mapping'),
      event: readFile(values.event, 'event'),
      response: values.response === undefined ? undefined : readJsonFile(values.response, 'response'),
      dialect,
      environment,
      clientSecret,
    });
    io.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof MappingError || error instanceof MessageError) {
      io.stderr.write(`port-agent render: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
