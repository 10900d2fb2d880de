/**
 * The agent's Prometheus metrics (issue 6), on a registry of its own — no global registry, so
 * tests and several agents in one process never share counts. Stages see only the small
 * `AgentMetrics` interface; gauges whose value another stage already knows (messages in hand,
 * consumer lag, circuits) are read from it when Prometheus scrapes (scrape-gauges.ts), so the hot
 * path pays nothing for them. Node's default metrics keep their standard names (no prefix), so
 * stock Node.js dashboards read them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HANDLE_OUTCOMES } from '../shared/source-message.js';
import type { HandleOutcome } from '../shared/source-message.js';
import type { StatusClass } from '../shared/service-response.js';
import { statusClassOf } from '../shared/service-response.js';
import { createBoundedLabel } from './bounded-label.js';
import type { BoundedLabel } from './bounded-label.js';
import { METRIC_PREFIX, NO_SOURCES, registerScrapeGauges } from './scrape-gauges.js';
import type { MetricSources } from './scrape-gauges.js';

export type { MetricSources } from './scrape-gauges.js';

export interface AgentMetrics {
  messageHandled(topic: string, outcome: HandleOutcome): void;
  /** One attempt of a request to an internal service (`host` as in its URL), with its duration. */
  requestAttempted(host: string, statusClass: StatusClass, durationSeconds: number): void;
  requestRetried(host: string): void;
  /**
   * One HTTP call to the Port API (each retry is a call) and how long it took; `status` undefined
   * when it got no answer.
   */
  portCall(route: string, status: number | undefined, durationSeconds: number): void;
  /** A run's final report was settled: seconds since the run's message was produced. */
  runEnded(outcome: HandleOutcome, secondsSinceProduced: number): void;
  tokenRequested(): void;
  /** The `x-ratelimit-remaining` Port announced last. */
  budgetRemaining(remaining: number): void;
  /** Time one Port call waited for its turn in the budget. */
  budgetWaited(seconds: number): void;
  /** A Port call answered 429. */
  rateLimited(route: string): void;
  /** Informational run-log lines folded into a run's final line while the budget was short. */
  linesFolded(lines: number): void;
  /** A report given up: refused by Port for good, or failing past its retries. */
  reportDropped(route: string, status: number | undefined): void;
  /** Gives the scrape-time values; until then those gauges read 0. */
  observe(sources: MetricSources): void;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface BuildInfo {
  version: string;
}

export interface MetricsOptions {
  /** Target hosts with series of their own; later ones are counted as `other` (bounded-label.ts). */
  maxHostLabels?: number;
  /**
   * The topics the source reads: their message counts start at 0 for every outcome, so the first
   * failed run shows in a rate (a counter series created at 1 has no increase to show).
   */
  topics?: readonly string[];
}

/**
 * Target hosts with series of their own. A host's latency histogram is 15 series, so 50 hosts
 * stay under a thousand; an agent with more targets sees the rest as `other`.
 */
export const DEFAULT_MAX_HOST_LABELS = 50;
/** A webhook answers in milliseconds to tens of seconds (WEBHOOK_INVOKER_TIMEOUT defaults to 30 s). */
const REQUEST_DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Port is tens to hundreds of milliseconds away; its calls time out after tens of seconds. */
const PORT_CALL_DURATION_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30];
/**
 * From the message's production to its final report: a backlog, retries with backoff (up to
 * WEBHOOK_RETRY_MAX_TIME_SECONDS) or a Port that rations its budget make minutes possible.
 */
const RUN_DURATION_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export function createAgentMetrics(build: BuildInfo, options: MetricsOptions = {}): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const maxHostLabels = options.maxHostLabels ?? DEFAULT_MAX_HOST_LABELS;
  const hosts: BoundedLabel = createBoundedLabel(maxHostLabels);
  let sources: MetricSources = NO_SOURCES;
  registerScrapeGauges(registry, () => sources, hosts);
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames, buckets, registers: [registry] });

  new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'The agent version and Node.js version; always 1',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: build.version, node_version: process.versions.node }, 1);

  const messages = counter('messages_total', 'Messages handled, by topic and outcome (delivered, failed, skipped, dropped)', ['topic', 'outcome']);
  for (const topic of options.topics ?? []) for (const outcome of HANDLE_OUTCOMES) messages.inc({ topic, outcome }, 0);
  const runDuration = histogram('run_duration_seconds', "A run's time from its message's production to its final report settled with Port, by outcome", ['outcome'], RUN_DURATION_BUCKETS_SECONDS);
  const requests = counter('webhook_requests_total', `Request attempts to internal services, by target host (the first ${maxHostLabels} seen; later ones: other) and status class (error: no answer)`, ['host', 'status_class']);
  const requestDuration = histogram('webhook_request_duration_seconds', 'Duration of one request attempt to an internal service, by target host', ['host'], REQUEST_DURATION_BUCKETS_SECONDS);
  const retries = counter('webhook_retries_total', 'Requests to internal services tried again after a retryable failure, by target host', ['host']);
  const portCalls = counter('port_api_calls_total', 'HTTP calls to the Port API, by route and status class (error: no answer)', ['route', 'status_class']);
  const portCallDuration = histogram('port_api_call_duration_seconds', 'Duration of one HTTP call to the Port API, by route (its wait for the budget not included)', ['route'], PORT_CALL_DURATION_BUCKETS_SECONDS);
  const portErrors = counter('port_api_errors_total', 'Port API calls that failed (no answer, or a status of 400 or more), by route', ['route']);
  const tokenRequests = counter('port_token_requests_total', 'Access tokens requested from the Port API (the first one and every refresh)');
  const budgetRemaining = new Gauge({
    name: `${METRIC_PREFIX}port_api_budget_remaining`,
    help: "Calls left in Port's API budget for the current window, as Port last announced (x-ratelimit-remaining)",
    registers: [registry],
  });
  const budgetWait = counter('port_api_budget_wait_seconds_total', "Time Port calls spent waiting for their turn in Port's API budget, summed over calls");
  const rateLimited = counter('port_api_rate_limited_total', 'Port API calls answered 429 (rate limited), by route; each waits for the budget and goes again', ['route']);
  const linesFolded = counter('run_log_lines_folded_total', "Informational run-log lines folded into their run's final line because Port's API budget was short");
  const reportsDropped = counter('port_reports_dropped_total', 'Reports given up: refused by Port for good (404, 413, 422…) or failing past their retries, by route and status', ['route', 'status']);
  return {
    messageHandled: (topic, outcome) => messages.inc({ topic, outcome }),
    requestAttempted(host, statusClass, durationSeconds) {
      const label = hosts.of(host);
      requests.inc({ host: label, status_class: statusClass });
      requestDuration.observe({ host: label }, durationSeconds);
    },
    requestRetried: (host) => retries.inc({ host: hosts.of(host) }),
    portCall(route, status, durationSeconds) {
      portCalls.inc({ route, status_class: statusClassOf(status) });
      portCallDuration.observe({ route }, durationSeconds);
      if (status === undefined || status >= 400) portErrors.inc({ route });
    },
    // A clock set back between production and report would give a negative time.
    runEnded: (outcome, seconds) => runDuration.observe({ outcome }, Math.max(0, seconds)),
    tokenRequested: () => tokenRequests.inc(),
    budgetRemaining: (remaining) => budgetRemaining.set(remaining),
    budgetWaited: (seconds) => budgetWait.inc(seconds),
    rateLimited: (route) => rateLimited.inc({ route }),
    linesFolded: (lines) => linesFolded.inc(lines),
    reportDropped: (route, status) => reportsDropped.inc({ route, status: status === undefined ? 'none' : String(status) }),
    observe(given) {
      sources = given;
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
