/**
 * One way from a message's bytes to a run ready to map (SPEC §3, §4): the size bound, JSON with its
 * key order kept, the classification, Port's signature and replay window, the invocation method,
 * and the body the mapping sees. The pipeline and `port-agent render` both go through here, so the
 * dry-run shows what the agent would do; what to log or report for each result is theirs.
 */
import { MessageError, describeError } from '../errors.js';
import { isPlainObject } from '../shared/json-shape.js';
import type { TopicRole } from '../shared/source-message.js';
import { classify, readInvocationMethod, recoverRunId, withoutSignatureHeaders } from './invocation.js';
import type { InvocationKind, InvocationMethod, Message } from './invocation.js';
import { parseRawJson, toPlainValue } from './raw-json.js';
import type { JsonNode } from './raw-json.js';
import { TIMESTAMP_HEADER, verifyIncomingSignature } from './signature.js';
import type { SignatureFailureReason } from './signature.js';

/** Where reading stopped: the dry-run words a JSON error as its own. */
export type UnreadableStage = 'size' | 'json' | 'classification' | 'invocation-method';

/** Why a message that was read is refused anyway. */
export type Refusal =
  | { reason: 'no-value' }
  | { reason: 'invalid-signature'; signatureFailure: SignatureFailureReason }
  | { reason: 'too-old'; ageMs: number | undefined; maxAgeMs: number };

/** A message the agent runs: what the mapping and delivery need, and nothing to parse again. */
export interface ReadyRun {
  kind: 'ready';
  invocationKind: InvocationKind;
  runId: string | undefined;
  invocationMethod: InvocationMethod;
  /** The message as the mapping sees it: signature headers removed. */
  body: Message;
  /** Stable across attempts and redeliveries: the run id, or a change-log event's place. */
  idempotencyKey: string;
  /** A `traceparent` among the message's own headers, where a producer may have put it. */
  traceparent: string | undefined;
}

export type Prepared =
  /** `error.runId` holds a run id the bytes show, so a failure can still be reported. */
  | { kind: 'unreadable'; stage: UnreadableStage; error: MessageError }
  /** Deliberately not an agent's (no invocation method, `agent` not true). */
  | { kind: 'skip'; runId: string | undefined; reason: string }
  | { kind: 'drop'; refusal: Refusal; invocationKind: InvocationKind | undefined; runId: string | undefined; traceparent: string | undefined }
  | ReadyRun;

export interface PrepareOptions {
  /** The topic the message came from; `by-content` (the dry-run) reads it off the message. */
  role: TopicRole | 'by-content';
  /** Claimed from Port's polling API: the agent's own run, without `agent: true`. */
  claimed: boolean;
  /** Runs-topic messages from Kafka: Port's signature and replay window to check. */
  verify: { secret: string; maxMessageAgeMs: number | undefined; nowMs: number } | undefined;
  /** AGENT_MAX_MESSAGE_BYTES; undefined: no bound (the dry-run reads a file the operator chose). */
  maxMessageBytes: number | undefined;
  /** The message's place (`topic-partition-offset`): a change-log event's idempotency key. */
  place: string;
}

/** How old a signed message is, from its `X-Port-Timestamp` (seconds); undefined without one. */
function messageAgeMs(message: unknown, nowMs: number): number | undefined {
  const headers = isPlainObject(message) ? message.headers : undefined;
  const timestamp = isPlainObject(headers) ? headers[TIMESTAMP_HEADER] : undefined;
  return typeof timestamp === 'number' && Number.isFinite(timestamp) ? nowMs - timestamp * 1000 : undefined;
}

function messageTraceparent(message: unknown): string | undefined {
  const headers = isPlainObject(message) ? message.headers : undefined;
  const value = isPlainObject(headers) ? headers.traceparent : undefined;
  return typeof value === 'string' ? value : undefined;
}

function roleOf(message: unknown, role: PrepareOptions['role']): TopicRole {
  if (role !== 'by-content') return role;
  return isPlainObject(message) && 'changelogDestination' in message ? 'changelog' : 'runs';
}

function unreadable(stage: UnreadableStage, error: unknown): Prepared {
  if (error instanceof MessageError) return { kind: 'unreadable', stage, error };
  throw error;
}

/** Port's signature, then the replay window; undefined when the message passes both. */
function refusalOf(root: JsonNode, plain: unknown, verify: NonNullable<PrepareOptions['verify']>): Refusal | undefined {
  const verdict = verifyIncomingSignature(root, verify.secret);
  if (!verdict.valid) return { reason: 'invalid-signature', signatureFailure: verdict.reason };
  if (verify.maxMessageAgeMs === undefined) return undefined;
  const ageMs = messageAgeMs(plain, verify.nowMs);
  // A replayed message: acting on it, or reporting on a run long finished, would do harm.
  if (ageMs === undefined || ageMs > verify.maxMessageAgeMs) return { reason: 'too-old', ageMs, maxAgeMs: verify.maxMessageAgeMs };
  return undefined;
}

/** Never throws for a bad message: every way a message can be wrong is a value. */
export function prepareMessage(value: Buffer | null, options: PrepareOptions): Prepared {
  if (value === null || value.length === 0) {
    return { kind: 'drop', refusal: { reason: 'no-value' }, invocationKind: undefined, runId: undefined, traceparent: undefined };
  }
  if (options.maxMessageBytes !== undefined && value.length > options.maxMessageBytes) {
    // Each message in hand is held several times over (bytes, tree, body, request): a bound on
    // its size keeps a crafted message from taking the agent's memory.
    const runId = recoverRunId(value.toString('utf8'));
    return unreadable('size', new MessageError(`the message is ${value.length} bytes, larger than AGENT_MAX_MESSAGE_BYTES (${options.maxMessageBytes})`, { runId }));
  }
  let root: JsonNode;
  try {
    root = parseRawJson(value);
  } catch (error) {
    return unreadable('json', new MessageError(`not valid JSON: ${describeError(error)}`, { runId: recoverRunId(value.toString('utf8')), cause: error }));
  }
  const plain = toPlainValue(root);
  const role = roleOf(plain, options.role);
  let classification;
  try {
    classification = classify(plain, role, options.claimed);
  } catch (error) {
    return unreadable('classification', error);
  }
  if (classification.kind === 'not-for-agent') return { kind: 'skip', runId: classification.runId, reason: classification.reason };
  const { invocationKind, runId, rawInvocationMethod } = classification;
  const traceparent = messageTraceparent(plain);
  // Change-log events are not signed; runs from Kafka must be. Claimed runs came over an
  // authenticated API call, unsigned.
  const refusal = options.verify && role === 'runs' ? refusalOf(root, plain, options.verify) : undefined;
  if (refusal) return { kind: 'drop', refusal, invocationKind, runId, traceparent };
  let invocationMethod: InvocationMethod;
  try {
    invocationMethod = readInvocationMethod(rawInvocationMethod, role, runId);
  } catch (error) {
    return unreadable('invocation-method', error);
  }
  return {
    kind: 'ready',
    invocationKind,
    runId,
    invocationMethod,
    body: withoutSignatureHeaders(plain as Message, invocationMethod.type),
    idempotencyKey: runId !== undefined && invocationKind !== 'changelog' ? runId : options.place,
    traceparent,
  };
}
