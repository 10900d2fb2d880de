/**
 * Gauges read when Prometheus scrapes, from the stages that already know the value: the hot path
 * pays nothing for them. Until the agent wires its stages (`observe`), each reads nothing.
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { CircuitState, HostCircuit } from '../shared/circuit-state.js';
import type { PartitionLag } from '../shared/source-status.js';
import type { BoundedLabel } from './bounded-label.js';

export const METRIC_PREFIX = 'port_agent_';

/** Values read at scrape time from the stages that own them. */
export interface MetricSources {
  /** Messages handed to the pipeline and not finished. */
  messagesInHand(): number;
  /** Requests to internal services on the wire now. */
  requestsInFlight(): number;
  /** Per partition held: messages past the next offset to commit, as of the last fetch. */
  consumerLag(): readonly PartitionLag[];
  /** Per partition held: messages on the broker past the group's commit point (kafka-backlog.ts). */
  brokerBacklog(): readonly PartitionLag[];
  /** Delivered runs whose reports Port has not all accepted yet. */
  runsAwaitingReports(): number;
  /** Port calls waiting for their turn in Port's API budget. */
  portCallsWaiting(): number;
  /** The circuits of the target hosts delivery keeps state for. */
  circuits(): readonly HostCircuit[];
  /** What GET /readyz would answer now. */
  isReady(): boolean;
}

/** Ordered, so the worst of several hosts counted as `other` is the highest. */
export const CIRCUIT_STATE_VALUES: Readonly<Record<CircuitState, number>> = { closed: 0, 'half-open': 1, open: 2 };

function partitionLabels({ topic, partition }: PartitionLag): { topic: string; partition: string } {
  return { topic, partition: String(partition) };
}

/** `sources` gives the stages' readers at each scrape (NO_SOURCES until the agent wires them). */
export function registerScrapeGauges(registry: Registry, sources: () => MetricSources, hosts: BoundedLabel): void {
  const scalar = (name: string, help: string, read: (from: MetricSources) => number) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read(sources()));
      },
    });
  /** Partitions given up in a rebalance disappear instead of showing a stale figure. */
  const perPartition = (name: string, help: string, read: (from: MetricSources) => readonly PartitionLag[]) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: ['topic', 'partition'],
      registers: [registry],
      collect() {
        this.reset();
        for (const entry of read(sources())) this.set(partitionLabels(entry), entry.lag);
      },
    });

  scalar('ready', 'Whether the agent is ready (GET /readyz answers 200): 1 or 0', (from) => (from.isReady() ? 1 : 0));
  scalar('runs_awaiting_reports', 'Delivered runs whose reports Port has not all accepted yet (at most AGENT_MAX_PENDING_REPORTS)', (from) => from.runsAwaitingReports());
  scalar('port_api_calls_waiting', "Port API calls waiting for their turn in Port's API budget", (from) => from.portCallsWaiting());
  scalar('messages_in_hand', 'Messages being handled now, their reports included (bounded by twice AGENT_MAX_IN_FLIGHT plus AGENT_MAX_PENDING_REPORTS)', (from) => from.messagesInHand());
  scalar('webhook_requests_in_flight', 'Requests to internal services on the wire now (bounded by AGENT_MAX_IN_FLIGHT)', (from) => from.requestsInFlight());
  perPartition('consumer_lag', 'Messages of a partition this agent holds past the next offset it will commit, as of its last fetch of the partition', (from) => from.consumerLag());
  perPartition(
    'consumer_backlog',
    "Messages on Port's brokers past the consumer group's commit point, for each partition this agent holds (asked of the brokers every 30 s)",
    (from) => from.brokerBacklog(),
  );
  new Gauge({
    name: `${METRIC_PREFIX}webhook_circuit_state`,
    help: "A target host's circuit breaker: 0 closed, 1 half-open (one probe request), 2 open (requests refused); hosts without recent failures are not listed",
    labelNames: ['host'],
    registers: [registry],
    collect() {
      this.reset();
      const worst = new Map<string, number>();
      for (const { host, state } of sources().circuits()) {
        const label = hosts.of(host);
        worst.set(label, Math.max(worst.get(label) ?? 0, CIRCUIT_STATE_VALUES[state]));
      }
      for (const [host, value] of worst) this.set({ host }, value);
    },
  });
}

/** Before the agent wires its stages: nothing in hand, nothing known, not ready. */
export const NO_SOURCES: MetricSources = {
  messagesInHand: () => 0,
  requestsInFlight: () => 0,
  consumerLag: () => [],
  brokerBacklog: () => [],
  runsAwaitingReports: () => 0,
  portCallsWaiting: () => 0,
  circuits: () => [],
  isReady: () => false,
};
