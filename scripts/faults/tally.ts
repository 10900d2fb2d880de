/**
 * What happened to each run, counted from the outside: the requests the webhook target received
 * and the final statuses the Port stand-in accepted (a PATCH, or a run-log line carrying one).
 * The definitions are printed under the table (see DEFINITIONS in report.ts); keep the two in step.
 */
import type { PortStandIn, RecordedCall } from '../../test/support/port-stand-in.js';
import type { WebhookTarget } from '../../test/support/webhook-target.js';

const STATUS_PATCH_ROUTE = 'PATCH /v1/actions/runs/:runId';
const RUN_LOG_ROUTE = 'POST /v1/actions/runs/:runId/logs';
const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Failure summaries can carry a response text; the table's notes need only their gist. */
const MAX_SUMMARY_CHARS = 100;

/** A final status Port accepted for a run. */
export interface ReportedStatus {
  status: string;
  summary: string | undefined;
}

export interface Tally {
  sent: number;
  /** Distinct sent runs the target received at least once. */
  delivered: number;
  /** Distinct sent runs with an accepted status PATCH. */
  reported: number;
  /** Target requests beyond the first, summed over runs. */
  duplicates: number;
  /** Sent runs not both delivered and reported, in production order. */
  lostRunIds: string[];
  /** When the target received each sent run (ms since the epoch), in arrival order. */
  deliveries: ReadonlyMap<string, readonly number[]>;
  /** The last final status accepted for each reported run. */
  statuses: ReadonlyMap<string, ReportedStatus>;
  /** Requests of runs delivered more than once, and how many of them carried `Idempotency-Key: <run id>`. */
  repeatedRunRequests: { total: number; withIdempotencyKey: number };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The run id of a delivered request: the default mapping sends the whole message as the body. */
function runIdOfBody(json: unknown): string | undefined {
  const context = isRecord(json) ? json.context : undefined;
  const runId = isRecord(context) ? context.runId : undefined;
  return typeof runId === 'string' ? runId : undefined;
}

interface Delivery {
  at: number;
  hasIdempotencyKey: boolean;
}

function deliveriesByRun(target: WebhookTarget, sentIds: ReadonlySet<string>): Map<string, Delivery[]> {
  const deliveries = new Map<string, Delivery[]>();
  for (const request of target.requests) {
    const runId = runIdOfBody(request.json);
    if (runId === undefined || !sentIds.has(runId)) continue;
    const runDeliveries = deliveries.get(runId) ?? [];
    runDeliveries.push({ at: request.at, hasIdempotencyKey: request.headers[IDEMPOTENCY_HEADER] === runId });
    deliveries.set(runId, runDeliveries);
  }
  return deliveries;
}

/** A final status Port accepted: a status PATCH, or a run-log line carrying `terminationStatus`. */
function acceptedStatus(call: RecordedCall): { status: string; summary: string | undefined } | undefined {
  if (call.status === undefined || call.status >= 400 || !isRecord(call.body)) return undefined;
  const status = call.route === STATUS_PATCH_ROUTE ? call.body.status : call.route === RUN_LOG_ROUTE ? call.body.terminationStatus : undefined;
  if (typeof status !== 'string') return undefined;
  const { summary } = call.body;
  return { status, summary: typeof summary === 'string' ? summary : undefined };
}

function statusesByRun(port: PortStandIn, sentIds: ReadonlySet<string>): Map<string, ReportedStatus> {
  const statuses = new Map<string, ReportedStatus>();
  // One pass over the calls; the per-run helpers of the stand-in would scan them once per run.
  for (const call of port.calls) {
    const runId = call.params.runId;
    if (runId === undefined || !sentIds.has(runId)) continue;
    const accepted = acceptedStatus(call);
    if (accepted !== undefined) statuses.set(runId, accepted);
  }
  return statuses;
}

export function tallyRuns(sent: readonly string[], target: WebhookTarget, port: PortStandIn): Tally {
  const sentIds = new Set(sent);
  const deliveries = deliveriesByRun(target, sentIds);
  const statuses = statusesByRun(port, sentIds);
  let duplicates = 0;
  const repeatedRunRequests = { total: 0, withIdempotencyKey: 0 };
  for (const runDeliveries of deliveries.values()) {
    duplicates += runDeliveries.length - 1;
    if (runDeliveries.length < 2) continue;
    repeatedRunRequests.total += runDeliveries.length;
    repeatedRunRequests.withIdempotencyKey += runDeliveries.filter((delivery) => delivery.hasIdempotencyKey).length;
  }
  return {
    sent: sent.length,
    delivered: deliveries.size,
    reported: statuses.size,
    duplicates,
    lostRunIds: sent.filter((runId) => !deliveries.has(runId) || !statuses.has(runId)),
    deliveries: new Map([...deliveries].map(([runId, runDeliveries]) => [runId, runDeliveries.map((delivery) => delivery.at)])),
    statuses,
    repeatedRunRequests,
  };
}

/** Distinct runs the target has received so far (cheap enough to poll). */
export function deliveredCount(target: WebhookTarget): number {
  const runIds = new Set<string>();
  for (const request of target.requests) {
    const runId = runIdOfBody(request.json);
    if (runId !== undefined) runIds.add(runId);
  }
  return runIds.size;
}

/** The end of a long summary: it says why (the start names the request). */
function shorten(text: string): string {
  return text.length <= MAX_SUMMARY_CHARS ? text : `…${text.slice(-(MAX_SUMMARY_CHARS - 1))}`;
}

/** Why each lost run is lost, grouped: "delivered, never reported", "reported FAILURE (…), never delivered", … */
export function describeLost(tally: Tally, runIds: readonly string[] = tally.lostRunIds): string[] {
  const groups = new Map<string, string[]>();
  for (const runId of runIds) {
    const isDelivered = tally.deliveries.has(runId);
    const status = tally.statuses.get(runId);
    // Numbers (ports, seconds) vary between runs failed for the same reason: group without them.
    const summary = status?.summary?.replace(/\d+/g, '#');
    const reported = status === undefined ? 'never reported' : `reported ${status.status}${summary ? ` ("${shorten(summary)}")` : ''}`;
    const reason = isDelivered ? `delivered, ${reported}` : `never delivered, ${reported}`;
    const members = groups.get(reason) ?? [];
    members.push(runId);
    groups.set(reason, members);
  }
  return [...groups].map(([reason, members]) => `${members.length} ${reason} (e.g. ${members.slice(0, 2).join(', ')})`);
}
