/**
 * Claiming runs from Port's polling API (SPEC §8), as the official agent does (port-labs/port-agent
 * app/consumers/http_polling_consumer.py): pending action runs and workflow node runs are claimed
 * for the agent's installation id, then acknowledged one by one; a run Port does not acknowledge
 * belongs to another agent.
 */
import type { Logger } from '../log.js';
import type { PortClient } from '../reporting/port-client.js';
import type { RetryPolicy } from '../retry/retry-policy.js';
import { isPlainObject } from '../shared/json-shape.js';
import type { ClaimedRunKind } from './polling-message.js';
import type { SourceActivity } from './source-activity.js';

/** SPEC §8: the installation id the official agent claims runs for. */
export const POLLING_INSTALLATION_ID = '_PORT_EXEC_AGENT';
/** SPEC §8: claim and ack calls carry this header. */
const RESERVED_USAGE_HEADERS = { 'x-port-reserved-usage': 'true' };
/** A claim is tried once: the poll loop's own backoff (POLLING_*) decides when to try again. */
const CLAIM_RETRY_POLICY: RetryPolicy = { retries: 0, minTimeoutMs: 0, maxTimeoutMs: 0, maxRetryTimeMs: 0 };

/** What differs between claiming action runs and node runs (SPEC §8). */
export interface ClaimApi {
  kind: ClaimedRunKind;
  /** The `topic` of the messages, for logs and the messages metric. */
  topic: string;
  claimPath: string;
  claimBody(limit: number): Record<string, unknown>;
  /** The list field of the claim's answer. */
  listField: 'runs' | 'nodeRuns';
  ackPath: string;
  ackBody(runId: string): Record<string, unknown>;
  isAcked(data: Record<string, unknown>): boolean;
}

const ACTION_RUNS: ClaimApi = {
  kind: 'action-run',
  topic: 'polling:action-runs',
  claimPath: '/v1/actions/runs/claim-pending',
  claimBody: (limit) => ({ installationId: POLLING_INSTALLATION_ID, limit, invocationMethod: 'WEBHOOK' }),
  listField: 'runs',
  ackPath: '/v1/actions/runs/ack',
  // One call per run, as the reference: a refusal then concerns that run alone.
  ackBody: (runId) => ({ runIds: [runId] }),
  isAcked: (data) => typeof data.ackedCount === 'number' && data.ackedCount > 0,
};

const NODE_RUNS: ClaimApi = {
  kind: 'node-run',
  topic: 'polling:node-runs',
  claimPath: '/v1/workflows/runs/claim-pending',
  claimBody: (limit) => ({ installationId: POLLING_INSTALLATION_ID, limit }),
  listField: 'nodeRuns',
  ackPath: '/v1/workflows/runs/ack',
  ackBody: (runId) => ({ nodeRunIdentifier: runId }),
  isAcked: (data) => data.acked === true,
};

/** Each poll claims action runs, then node runs. */
export const CLAIM_APIS: readonly ClaimApi[] = [ACTION_RUNS, NODE_RUNS];

export interface Claims {
  /** The claimed runs, or why the claim failed (a failed poll). */
  claim(api: ClaimApi): Promise<{ ok: true; runs: unknown[] } | { ok: false; error: string }>;
  /** One call per run (SPEC §8); false when Port did not acknowledge it or the call failed. */
  acknowledge(api: ClaimApi, runId: string): Promise<boolean>;
}

export interface ClaimsDeps {
  port: PortClient;
  /** POLLING_RUNS_BATCH_SIZE: runs claimed at most per call. */
  runsBatchSize: number;
  /** Every call is an attempt; an answer is Port answering. */
  activity: SourceActivity;
  logger: Logger;
}

const route = (method: string, path: string): string => `${method} ${path}`;

export function createClaims(deps: ClaimsDeps): Claims {
  const { port, activity, logger } = deps;
  return {
    async claim(api) {
      activity.attempted();
      const result = await port.call('POST', api.claimPath, route('POST', api.claimPath), api.claimBody(deps.runsBatchSize), RESERVED_USAGE_HEADERS, {
        retryPolicy: CLAIM_RETRY_POLICY,
      });
      if (!result.ok) return { ok: false, error: result.error.message };
      activity.answered();
      // The reference reads the list with a default: no list means nothing to do.
      const runs = isPlainObject(result.data) ? (result.data[api.listField] ?? []) : undefined;
      if (!Array.isArray(runs)) return { ok: false, error: `Port API ${route('POST', api.claimPath)} answered without a ${api.listField} list` };
      return { ok: true, runs };
    },
    async acknowledge(api, runId) {
      activity.attempted();
      const result = await port.call('PATCH', api.ackPath, route('PATCH', api.ackPath), api.ackBody(runId), RESERVED_USAGE_HEADERS);
      if (!result.ok) {
        logger.warn({ runId, status: result.status, err: result.error.message }, 'run skipped: acknowledging it failed');
        return false;
      }
      activity.answered();
      if (!isPlainObject(result.data) || !api.isAcked(result.data)) {
        logger.info({ runId }, 'run skipped: Port did not acknowledge it (another agent took it)');
        return false;
      }
      return true;
    },
  };
}
