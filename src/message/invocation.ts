/**
 * What a Kafka message means to the agent (SPEC §3): the kind of invocation, its run id and its
 * invocation method, validated so later stages trust the types.
 */
import { MessageError } from '../errors.js';
import { isPlainObject } from '../shared/json-shape.js';
import { isHeaderName, isHeaderValue } from '../shared/http-header-rules.js';
import type { TopicRole } from '../shared/source-message.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';

export type InvocationKind = 'action-run' | 'node-run' | 'changelog';

export interface InvocationMethod {
  type: string | undefined;
  url: string | undefined;
  method: string | undefined;
  synchronized: boolean;
  /** SPEC §6: headers Port's docs promise are sent; mapping headers override them. */
  headers: Record<string, string>;
}

export type Message = Record<string, unknown>;

export type Classification =
  | { kind: 'not-for-agent'; runId: string | undefined; reason: string }
  | { kind: 'invocation'; invocationKind: InvocationKind; runId: string | undefined; rawInvocationMethod: Record<string, unknown> };

const NODE_RUN_PREFIX = 'wfnr_';
const RUN_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,256}$/;

function member(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isPlainObject(current) || !Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/** A run's kind by its id: workflow node runs are `wfnr_…`, action runs `r_…`. */
export function runKindOf(runId: string): 'action-run' | 'node-run' {
  return runId.startsWith(NODE_RUN_PREFIX) ? 'node-run' : 'action-run';
}

export function runIdOf(message: unknown): string | undefined {
  const runId = member(message, 'context', 'runId');
  return typeof runId === 'string' && runId !== '' ? runId : undefined;
}

/**
 * The invocation method's place depends on the topic; only `agent: true` is ours, unless the run
 * was `claimed` from Port's polling API, which hands this agent its own runs without the flag.
 */
export function classify(message: unknown, role: TopicRole, claimed = false): Classification {
  if (!isPlainObject(message)) throw new MessageError('the message is not a JSON object');
  const runId = runIdOf(message);
  const invocationMethod = role === 'runs' ? member(message, 'payload', 'action', 'invocationMethod') : member(message, 'changelogDestination');
  const where = role === 'runs' ? 'payload.action.invocationMethod' : 'changelogDestination';
  if (!isPlainObject(invocationMethod)) return { kind: 'not-for-agent', runId, reason: `no ${where} object` };
  if (!claimed && invocationMethod.agent !== true) return { kind: 'not-for-agent', runId, reason: `${where}.agent is not true` };
  if (role === 'changelog') return { kind: 'invocation', invocationKind: 'changelog', runId, rawInvocationMethod: invocationMethod };
  if (runId === undefined) throw new MessageError('the run message has no context.runId');
  // The run id goes into Port API paths; anything but a plain identifier is not Port's.
  if (!RUN_ID_PATTERN.test(runId)) throw new MessageError('context.runId is not a valid run id');
  return {
    kind: 'invocation',
    invocationKind: runKindOf(runId),
    runId,
    rawInvocationMethod: invocationMethod,
  };
}

/** A name from the message quoted in an error is cut here: the error becomes a run summary. */
const QUOTED_NAME_MAX_CHARS = 64;

/** The JSON type of a value, as an operator reads it in a summary. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function quotedName(name: string): string {
  return JSON.stringify(name.length > QUOTED_NAME_MAX_CHARS ? `${name.slice(0, QUOTED_NAME_MAX_CHARS)}…` : name);
}

function optionalString(raw: Record<string, unknown>, key: string, where: string, runId: string | undefined): string | undefined {
  const value = raw[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new MessageError(`${where}.${key} must be a string (got ${typeName(value)})`, { runId });
  return value;
}

/**
 * SPEC §6: the invocation method's headers are sent, so they must be headers Node.js can send; a
 * null value leaves the header out, as for mapping headers. Values are never quoted: they may be
 * credentials.
 */
function readHeaders(raw: unknown, where: string, runId: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (raw === undefined || raw === null) return headers;
  if (!isPlainObject(raw)) throw new MessageError(`${where}.headers must be an object (got ${typeName(raw)})`, { runId });
  for (const [name, value] of Object.entries(raw)) {
    if (value === null) continue;
    if (!isHeaderName(name)) throw new MessageError(`${where}.headers has a name that is not a valid HTTP header name: ${quotedName(name)}`, { runId });
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new MessageError(`${where}.headers[${quotedName(name)}] must be a string (got ${typeName(value)})`, { runId });
    }
    const text = String(value);
    if (!isHeaderValue(text)) {
      throw new MessageError(`${where}.headers[${quotedName(name)}] is not a valid HTTP header value (line breaks, control or non-Latin-1 characters)`, { runId });
    }
    headers[name] = text;
  }
  return headers;
}

/** Narrows the invocation method's fields; a wrong type is a MessageError naming the field. */
export function readInvocationMethod(raw: Record<string, unknown>, role: TopicRole, runId: string | undefined): InvocationMethod {
  const where = role === 'runs' ? 'invocationMethod' : 'changelogDestination';
  const synchronized = raw.synchronized;
  if (synchronized !== undefined && synchronized !== null && typeof synchronized !== 'boolean') {
    throw new MessageError(`${where}.synchronized must be a boolean (got ${typeName(synchronized)})`, { runId });
  }
  return {
    type: optionalString(raw, 'type', where, runId),
    url: optionalString(raw, 'url', where, runId),
    method: optionalString(raw, 'method', where, runId),
    synchronized: synchronized === true,
    headers: readHeaders(raw.headers, where, runId),
  };
}

/**
 * SPEC §4/§5: the message the mapping and the default body see has the signature headers removed
 * (the whole `headers` key for GitLab), as the official agent does before mapping.
 */
export function withoutSignatureHeaders(message: Message, invocationType: string | undefined): Message {
  if (!isPlainObject(message.headers)) return message;
  const copy: Message = { ...message };
  if (invocationType === 'GITLAB') {
    delete copy.headers;
    return copy;
  }
  const headers = { ...message.headers };
  delete headers[SIGNATURE_HEADER];
  delete headers[TIMESTAMP_HEADER];
  copy.headers = headers;
  return copy;
}

/** A run id found in bytes that are not valid JSON, so the failure can still be reported. */
export function recoverRunId(text: string): string | undefined {
  return /"runId"\s*:\s*"((?:r|wfnr)_[A-Za-z0-9_-]{1,200})"/.exec(text)?.[1];
}
