/**
 * The message the pipeline handles for a run claimed from Port's polling API: the shape
 * a runs-topic message has, so classifying, mapping, delivery and reporting are the Kafka path's.
 *
 * Field names and shapes follow the official agent (port-labs/port-agent), whose bodies a service
 * may already parse:
 * - a claimed action run is `{id, payload: {type, url, agent, synchronized, method, headers, body}}`,
 *   the invocation method flattened on `payload` and the Port event in `payload.body`
 *   (app/streamers/polling/polling_streamer.py, `process_run`); no `type` or `url` is an error;
 * - a claimed workflow node run is `{identifier, config: {type, url, agent, synchronized, method,
 *   headers}}` (`process_wf_node_run`);
 * - the message is built as app/processors/polling/polling_to_webhook_processor.py builds it: the
 *   event with `headers`, `context.runId` and `payload.action.invocationMethod` set — the latter
 *   replaced by exactly `{type, url, synchronized, method, headers}` (defaults `false`, `POST`,
 *   `{}`; `agent` left out) — and for a node run `{headers, payload: {action: {invocationMethod}},
 *   context: {runId, nodeConfig}}`.
 *
 * Without `agent`, the pipeline knows a claimed run by its source: Port handed it to this agent.
 */
import { isPlainObject } from '../json-shape.js';

export type ClaimedRunKind = 'action-run' | 'node-run';

/** A claimed run turned into a message, or why it could not be (the run is then reported failed). */
export type BuiltRunMessage = { ok: true; message: Record<string, unknown> } | { ok: false; reason: string };

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

/** The invocation method as the official agent rebuilds it, with exactly these keys in this order. */
function invocationMethodOf(source: Record<string, unknown>): Record<string, unknown> {
  return {
    type: source.type ?? null,
    url: source.url ?? null,
    synchronized: source.synchronized ?? false,
    method: source.method ?? 'POST',
    headers: source.headers ?? {},
  };
}

function buildActionRun(run: Record<string, unknown>, runId: string): Record<string, unknown> {
  if (!isPlainObject(run.payload)) throw new InvalidRun('the claimed run has no payload object');
  const { payload } = run;
  if (!payload.type || !payload.url) throw new InvalidRun('the claimed run has no invocation method type or url');
  const event = objectAt(payload, 'body', 'payload.body');
  const eventPayload = objectAt(event, 'payload', 'payload.body.payload');
  const eventAction = objectAt(eventPayload, 'action', 'payload.body.payload.action');
  const invocationMethod = invocationMethodOf(payload);
  return {
    ...event,
    headers: invocationMethod.headers,
    payload: { ...eventPayload, action: { ...eventAction, invocationMethod } },
    context: { ...objectAt(event, 'context', 'payload.body.context'), runId },
  };
}

function buildNodeRun(nodeRun: Record<string, unknown>, runId: string): Record<string, unknown> {
  const config = objectAt(nodeRun, 'config', 'config');
  const invocationMethod = invocationMethodOf(config);
  return {
    headers: invocationMethod.headers,
    payload: { action: { invocationMethod } },
    context: { runId, nodeConfig: config },
  };
}

/** The message handled for a claimed run whose id `claimedRunId` read. */
export function buildRunMessage(kind: ClaimedRunKind, run: unknown, runId: string): BuiltRunMessage {
  if (!isPlainObject(run)) return { ok: false, reason: 'the claimed run is not an object' };
  try {
    return { ok: true, message: kind === 'action-run' ? buildActionRun(run, runId) : buildNodeRun(run, runId) };
  } catch (error) {
    if (error instanceof InvalidRun) return { ok: false, reason: error.message };
    throw error;
  }
}
