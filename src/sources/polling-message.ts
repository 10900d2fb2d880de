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
 * An action run must say `agent: true`, as the official agent checks before dropping the flag; the
 * pipeline then knows a claimed run by its source.
 */
import { isPlainObject } from '../shared/json-shape.js';

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
  // `.get(key, default)` in the official agent: a key present with null stays null.
  const valueOr = (key: string, fallback: unknown): unknown => (key in source ? source[key] : fallback);
  return {
    type: valueOr('type', null),
    url: valueOr('url', null),
    synchronized: valueOr('synchronized', false),
    method: valueOr('method', 'POST'),
    headers: valueOr('headers', {}),
  };
}

function buildActionRun(run: Record<string, unknown>, runId: string): Record<string, unknown> {
  if (!isPlainObject(run.payload)) throw new InvalidRun('the claimed run has no payload object');
  const { payload } = run;
  // The official agent reads these keys as `payload[key]`: an absent one fails the run.
  if (!('type' in payload) || !('url' in payload)) throw new InvalidRun('the claimed run has no invocation method type or url');
  if (!('agent' in payload)) throw new InvalidRun('the claimed run has no agent flag');
  // The official agent skips it and leaves it claimed, in progress for ever: no other agent will see it.
  if (payload.agent !== true) throw new InvalidRun('the claimed run is not for an agent (payload.agent is not true)');
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

/** When Port created the run (its `createdAt`), ms since the epoch; undefined when it says none. */
export function claimedRunCreatedAtMs(run: unknown): number | undefined {
  if (!isPlainObject(run) || typeof run.createdAt !== 'string') return undefined;
  const ms = Date.parse(run.createdAt);
  return Number.isFinite(ms) ? ms : undefined;
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
