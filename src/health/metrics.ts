/**
 * The agent's Prometheus metrics (issue 6), on a registry of its own — no global registry, so
 * tests and several agents in one process never share counts. Stages see only the small
 * `AgentMetrics` interface; gauges whose value another stage already knows (messages in hand,
 * consumer lag) are read from it when Prometheus scrapes, so the hot path pays nothing for them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HandleOutcome } from '../shared/source-message.js';
import type { PartitionLag } from '../shared/source-status.js';
import type { StatusClass } from '../shared/service-response.js';
import { statusClassOf } from '../shared/service-response.js';

/** Values read at scrape time from the stages that own them. */
export interface MetricSources {
  /** Messages handed to the pipeline and not finished. */
  messagesInHand(): number;
  /** Requests to internal services on the wire now. */
  requestsInFlight(): number;
  consumerLag(): readonly PartitionLag[];
  /** Delivered runs whose reports Port has not all accepted yet. */
  runsAwaitingReports(): number;
  /** Port calls waiting for their turn in Port's API budget. */
  portCallsWaiting(): number;
}

export interface AgentMetrics {
  messageHandled(topic: string, outcome: HandleOutcome): void;
  /** One attempt of a request to an internal service, with its duration. */
  requestAttempted(statusClass: StatusClass, durationSeconds: number): void;
  requestRetried(): void;
  /** One HTTP call to the Port API (each retry is a call); `status` undefined when it got no answer. */
  portCall(route: string, status: number | undefined): void;
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

const METRIC_PREFIX = 'port_agent_';
/** A webhook answers in milliseconds to tens of seconds (WEBHOOK_INVOKER_TIMEOUT defaults to 30 s). */
const REQUEST_DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createAgentMetrics(build: BuildInfo): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  // Gauges that prom-client names `_total`, which Prometheus reserves for counters (promtool
  // rejects them); handle counts say little about the agent anyway.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
  }
  let sources: MetricSources = { messagesInHand: () => 0, requestsInFlight: () => 0, consumerLag: () => [], runsAwaitingReports: () => 0, portCallsWaiting: () => 0 };

  new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'The agent version and Node.js version; always 1',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: build.version, node_version: process.versions.node }, 1);

  const messages = new Counter({
    name: `${METRIC_PREFIX}messages_total`,
    help: 'Messages handled, by topic and outcome (delivered, failed, skipped, dropped)',
    labelNames: ['topic', 'outcome'],
    registers: [registry],
  });
  const requests = new Counter({
    name: `${METRIC_PREFIX}webhook_requests_total`,
    help: 'Request attempts to internal services, by status class (error: no answer)',
    labelNames: ['status_class'],
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: `${METRIC_PREFIX}webhook_request_duration_seconds`,
    help: 'Duration of one request attempt to an internal service',
    labelNames: ['status_class'],
    buckets: REQUEST_DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const retries = new Counter({
    name: `${METRIC_PREFIX}webhook_retries_total`,
    help: 'Requests to internal services tried again after a retryable failure',
    registers: [registry],
  });
  const portCalls = new Counter({
    name: `${METRIC_PREFIX}port_api_calls_total`,
    help: 'HTTP calls to the Port API, by route and status class (error: no answer)',
    labelNames: ['route', 'status_class'],
    registers: [registry],
  });
  const portErrors = new Counter({
    name: `${METRIC_PREFIX}port_api_errors_total`,
    help: 'Port API calls that failed (no answer, or a status of 400 or more), by route',
    labelNames: ['route'],
    registers: [registry],
  });
  const tokenRequests = new Counter({
    name: `${METRIC_PREFIX}port_token_requests_total`,
    help: 'Access tokens requested from the Port API (the first one and every refresh)',
    registers: [registry],
  });
  const budgetRemaining = new Gauge({
    name: `${METRIC_PREFIX}port_api_budget_remaining`,
    help: "Calls left in Port's API budget for the current window, as Port last announced (x-ratelimit-remaining)",
    registers: [registry],
  });
  const budgetWait = new Counter({
    name: `${METRIC_PREFIX}port_api_budget_wait_seconds_total`,
    help: "Time Port calls spent waiting for their turn in Port's API budget, summed over calls",
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: `${METRIC_PREFIX}port_api_rate_limited_total`,
    help: 'Port API calls answered 429 (rate limited), by route; each waits for the budget and goes again',
    labelNames: ['route'],
    registers: [registry],
  });
  const linesFolded = new Counter({
    name: `${METRIC_PREFIX}run_log_lines_folded_total`,
    help: "Informational run-log lines folded into their run's final line because Port's API budget was short",
    registers: [registry],
  });
  const reportsDropped = new Counter({
    name: `${METRIC_PREFIX}port_reports_dropped_total`,
    help: 'Reports given up: refused by Port for good (404, 413, 422…) or failing past their retries, by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  new Gauge({
    name: `${METRIC_PREFIX}runs_awaiting_reports`,
    help: 'Delivered runs whose reports Port has not all accepted yet (at most AGENT_MAX_PENDING_REPORTS)',
    registers: [registry],
    collect() {
      this.set(sources.runsAwaitingReports());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}port_api_calls_waiting`,
    help: "Port API calls waiting for their turn in Port's API budget",
    registers: [registry],
    collect() {
      this.set(sources.portCallsWaiting());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}messages_in_hand`,
    help: 'Messages being handled now, their reports included (bounded by twice AGENT_MAX_IN_FLIGHT plus AGENT_MAX_PENDING_REPORTS)',
    registers: [registry],
    collect() {
      this.set(sources.messagesInHand());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}webhook_requests_in_flight`,
    help: 'Requests to internal services on the wire now (bounded by AGENT_MAX_IN_FLIGHT)',
    registers: [registry],
    collect() {
      this.set(sources.requestsInFlight());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}consumer_lag`,
    help: 'Messages of a partition past the next offset the agent will commit',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      // Partitions given up in a rebalance disappear instead of showing a stale lag.
      this.reset();
      for (const { topic, partition, lag } of sources.consumerLag()) this.set({ topic, partition: String(partition) }, lag);
    },
  });

  return {
    messageHandled: (topic, outcome) => messages.inc({ topic, outcome }),
    requestAttempted(statusClass, durationSeconds) {
      requests.inc({ status_class: statusClass });
      requestDuration.observe({ status_class: statusClass }, durationSeconds);
    },
    requestRetried: () => retries.inc(),
    portCall(route, status) {
      portCalls.inc({ route, status_class: statusClassOf(status) });
      if (status === undefined || status >= 400) portErrors.inc({ route });
    },
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
