/**
 * Runs as Port's polling API hands them out (SPEC §8), for `PortStandIn.enqueueActionRuns` and
 * `enqueueNodeRuns`: shaped as the official agent reads them (port-labs/port-agent
 * app/streamers/polling/polling_streamer.py): an action run carries its invocation method
 * flattened on `payload` and the Port event in `payload.body`; a node run carries it in `config`.
 */
import { actionRunMessage } from './messages.js';
import type { ActionRunOptions } from './messages.js';

export function claimedActionRun(options: ActionRunOptions): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    type: options.type ?? 'WEBHOOK',
    url: options.url,
    agent: options.agent ?? true,
    synchronized: options.synchronized ?? false,
    body: actionRunMessage(options),
  };
  if (options.method !== undefined) payload.method = options.method;
  if (options.headers !== undefined) payload.headers = options.headers;
  return { id: options.runId, status: 'IN_PROGRESS', payload };
}

export function claimedNodeRun(options: { runId: string; url: string; synchronized?: boolean; method?: string }): Record<string, unknown> {
  const config: Record<string, unknown> = { type: 'WEBHOOK', agent: true, url: options.url, synchronized: options.synchronized ?? true };
  if (options.method !== undefined) config.method = options.method;
  return { identifier: options.runId, status: 'IN_PROGRESS', config };
}
