/**
 * The message the pipeline handles for a run claimed from Port's polling API (SPEC §8): the shape
 * a runs-topic message has, so classifying, mapping, delivery and reporting are the Kafka path's.
 *
 * Field names follow the official agent (port-labs/port-agent):
 * - a claimed action run is `{id, payload: {type, url, agent, synchronized, method, headers, body}}`,
 *   the invocation method flattened on `payload` and the Port event in `payload.body`
 *   (app/streamers/polling/polling_streamer.py, `process_run`; the flattened keys override the
 *   event's own `payload.action.invocationMethod`, defaults `synchronized: false`, `method: POST`,
 *   `headers: {}`; no `type` or `url` is an error);
 * - a claimed workflow node run is `{identifier, config: {type, url, agent, synchronized, method,
 *   headers}}` (`process_wf_node_run`);
 * - the message is built as app/processors/polling/polling_to_webhook_processor.py builds it: the
 *   event with `headers`, `payload.action.invocationMethod` and `context.runId` set, and for a
 *   node run `{headers, payload: {action: {invocationMethod}}, context: {runId, nodeConfig}}`.
 *
 * `agent` stays in the invocation method: the pipeline's classification skips a run whose `agent`
 * is not true, as the official agent skips it ("not for agent").
 */
import { isPlainObject } from '../json-shape.js';

export type ClaimedRunKind = 'action-run' | 'node-run';

/** A claimed run turned into a message, or why it could not be (the run is then reported failed). */
export type BuiltRunMessage = { ok: true; message: Record<string, unknown> } | { ok: false; reason: string };

/** The invocation-method keys Port flattens on a claimed action run's payload. */
const FLATTENED_INVOCATION_METHOD_KEYS = ['type', 'url', 'agent', 'synchronized', 'method', 'headers'] as const;

/** The run's id as Port names it: `id` for an action run, `identifier` for a node run. */
export function claimedRunId(kind: ClaimedRunKind, run: unknown): string | undefined {
  if (!isPlainObject(run)) return undefined;
  const id = kind === 'action-run' ? run.id : run.identifier;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

class InvalidRun extends Error {}

/** The object at `key` of `parent`, `{}` when absent; anything else there is an invalid run. */
function objectAt(parent: Record<string, unknown>, key: string, where: string): Record<string, unknown> {
  const value = parent[key];
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw new InvalidRun(`${where} is not an object`);
  return value;
}

/** The invocation-method keys present on `source`, and only those: absent keys must not override. */
function flattenedInvocationMethod(source: Record<string, unknown>): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of FLATTENED_INVOCATION_METHOD_KEYS) if (key in source) picked[key] = source[key];
  return picked;
}

function withDefaults(invocationMethod: Record<string, unknown>): Record<string, unknown> {
  return { ...invocationMethod, synchronized: invocationMethod.synchronized ?? false, method: invocationMethod.method ?? 'POST', headers: invocationMethod.headers ?? {} };
}

function buildActionRun(run: Record<string, unknown>, runId: string): Record<string, unknown> {
  if (!isPlainObject(run.payload)) throw new InvalidRun('the claimed run has no payload object');
  const { payload } = run;
  const event = objectAt(payload, 'body', 'payload.body');
  const eventPayload = objectAt(event, 'payload', 'payload.body.payload');
  const eventAction = objectAt(eventPayload, 'action', 'payload.body.payload.action');
  const eventInvocationMethod = objectAt(eventAction, 'invocationMethod', 'payload.body.payload.action.invocationMethod');
  const invocationMethod = withDefaults({ ...eventInvocationMethod, ...flattenedInvocationMethod(payload) });
  if (!invocationMethod.type || !invocationMethod.url) throw new InvalidRun('the claimed run has no invocation method type or url');
  return {
    ...event,
    headers: invocationMethod.headers,
    payload: { ...eventPayload, action: { ...eventAction, invocationMethod } },
    context: { ...objectAt(event, 'context', 'payload.body.context'), runId },
  };
}

function buildNodeRun(nodeRun: Record<string, unknown>, runId: string): Record<string, unknown> {
  const config = objectAt(nodeRun, 'config', 'config');
  const invocationMethod = withDefaults(flattenedInvocationMethod(config));
  return {
    headers: invocationMethod.headers,
    payload: { action: { invocationMethod } },
    context: { runId, nodeConfig: config },
  };
}

/** SPEC §8: the message handled for a claimed run whose id `claimedRunId` read. */
export function buildRunMessage(kind: ClaimedRunKind, run: unknown, runId: string): BuiltRunMessage {
  if (!isPlainObject(run)) return { ok: false, reason: 'the claimed run is not an object' };
  try {
    return { ok: true, message: kind === 'action-run' ? buildActionRun(run, runId) : buildNodeRun(run, runId) };
  } catch (error) {
    if (error instanceof InvalidRun) return { ok: false, reason: error.message };
    throw error;
  }
}
