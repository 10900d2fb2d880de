/**
 * One fault scenario's world: its own broker (a frozen or killed broker must not leak into the
 * next scenario), Port stand-in, webhook target, producer and org id (so new topics and group), and
 * the agents and loads it starts. close() ends every one of them, whatever state the scenario left.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Producer } from 'kafkajs';
import { agentSetup, isConsuming } from '../../test/support/harness.js';
import type { AgentSetup } from '../../test/support/harness.js';
import { startAgent } from '../../test/support/agent-process.js';
import type { AgentExit, AgentLogLine, AgentProcess } from '../../test/support/agent-process.js';
import { startBroker } from '../../test/support/broker.js';
import type { Broker } from '../../test/support/broker.js';
import { committedOffsets, createKafka, createProducer, produce } from '../../test/support/kafka.js';
import { startPortStandIn } from '../../test/support/port-stand-in.js';
import type { PortStandIn } from '../../test/support/port-stand-in.js';
import { waitFor } from '../../test/support/wait.js';
import { startWebhookTarget } from '../../test/support/webhook-target.js';
import type { WebhookTarget } from '../../test/support/webhook-target.js';
import { TOPIC_PARTITIONS, startRunLoad } from './run-load.js';
import type { LoadPlan, RunLoad } from './run-load.js';
import { deliveredCount, tallyRuns } from './tally.js';
import type { Tally } from './tally.js';

/** The agent's settings in every scenario: short timeouts, so faults show and heal quickly. */
export const AGENT_FAULT_ENV: Readonly<Record<string, string>> = {
  // docs/development.md: 6–10 s on the mock broker (the group thrashes below); a lost member is noticed fast.
  KAFKA_CONSUMER_SESSION_TIMEOUT_MS: '6000',
  // docs/development.md: the mock does not wake a waiting fetch; a long wait makes deliveries come in bursts.
  KAFKA_CONSUMER_FETCH_MAX_WAIT_MS: '50',
  WEBHOOK_INVOKER_TIMEOUT: '2',
  // Retries must outlast the 10 s target outage (backoff 1 s doubling to 10 s takes 4–5 of them).
  // An agent without retry support ignores both.
  WEBHOOK_MAX_RETRIES: '10',
  WEBHOOK_RETRY_MAX_TIME_SECONDS: '30',
  // Only reached when a scenario is cut short: a clean stop must not hold up the next scenario.
  AGENT_SHUTDOWN_GRACE_SECONDS: '5',
  // INFO is enough to explain what happened; DEBUG would log several lines per run.
  LOG_LEVEL: 'INFO',
};

/**
 * The target answers like a typical internal service. The latency is what keeps runs in flight
 * when a fault hits: the agent keeps up with the loads here, so without it nothing would be in hand.
 */
const TARGET_LATENCY_MS = 200;
/** docs/development.md: a first join takes about 3 s, a rebalance the session timeout. */
export const AGENT_JOIN_TIMEOUT_MS = 30_000;
const AGENT_STOP_TIMEOUT_MS = 10_000;
const PRODUCER_DISCONNECT_TIMEOUT_MS = 5_000;
const DELIVERY_WAIT_TIMEOUT_MS = 30_000;
/** Generous: after a fault the agent may need a rebuild backoff plus a rebalance before it goes on. */
export const COMMIT_WAIT_TIMEOUT_MS = 90_000;
const COMMIT_POLL_INTERVAL_MS = 1_000;
const DELIVERY_POLL_INTERVAL_MS = 50;
const LEVEL_WARN = 40;

export interface ScenarioContext {
  readonly broker: Broker;
  readonly port: PortStandIn;
  readonly target: WebhookTarget;
  readonly setup: AgentSetup;
  /** Starts an agent of this scenario's org (each call one more replica). */
  startAgent(): AgentProcess;
  /** Starts an agent and waits until it has joined the consumer group. */
  startConsumingAgent(): Promise<AgentProcess>;
  /** The agent's exit, once it has exited. */
  exitOf(agent: AgentProcess): AgentExit | undefined;
  /** Starts producing runs for this scenario's target. */
  startLoad(plan: LoadPlan): RunLoad;
  /** Waits until the target has received `count` distinct runs. */
  waitForDelivered(count: number): Promise<void>;
  /**
   * Waits until the group has committed every run of `load` — the agent has handled them all, so
   * nothing more can arrive; false when that did not happen within a generous time.
   */
  waitUntilAllCommitted(load: RunLoad): Promise<boolean>;
  /** Runs of `load` below the group's committed offsets. */
  committedRunIds(load: RunLoad): Promise<string[]>;
  tally(load: RunLoad): Tally;
  /** Disconnects the scenario's producer (before its broker is killed for good). */
  disconnectProducer(): Promise<void>;
  /** A progress line, with the time since the scenario started. */
  log(text: string): void;
  /** `+12.3 s`: a moment relative to the scenario's start. */
  at(timeMs: number): string;
  close(): Promise<void>;
}

export function isWarnOrError(line: AgentLogLine): boolean {
  const { level } = line;
  if (typeof level === 'number') return level >= LEVEL_WARN;
  return level === 'warn' || level === 'error' || level === 'fatal';
}

/**
 * Creates the org's topics before any agent subscribes: a topic appearing later changes the
 * subscription's metadata, and kafkajs answers with a rebalance in the middle of the load (and
 * duplicates that have nothing to do with the fault).
 */
async function createTopics(brokers: string[], producer: Producer, topics: string[]): Promise<void> {
  // Sending no messages still fetches the topics' metadata, which creates them (auto-creation).
  for (const topic of topics) await produce(producer, topic, []);
  const admin = createKafka(brokers).admin();
  await admin.connect();
  try {
    const { topics: found } = await admin.fetchTopicMetadata({ topics });
    for (const { name, partitions } of found) {
      // The load chooses partitions itself (run-load.ts) and relies on this count.
      if (partitions.length !== TOPIC_PARTITIONS) throw new Error(`Topic ${name} has ${partitions.length} partitions, expected ${TOPIC_PARTITIONS}`);
    }
  } finally {
    await admin.disconnect();
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  return Promise.race([promise, delay(timeoutMs).then(() => undefined)]);
}

export async function openScenario(runIdPrefix: string): Promise<ScenarioContext> {
  const startedAtMs = Date.now();
  const closers: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    // Last opened, first closed: agents and loads before the producer, the producer before the broker.
    for (const closer of closers.splice(0).reverse()) {
      await closer().catch((error: unknown) => console.error(`  cleanup: ${error instanceof Error ? error.message : String(error)}`));
    }
  };
  try {
    return await open();
  } catch (error) {
    await close();
    throw error;
  }

  async function open(): Promise<ScenarioContext> {
    const broker = await startBroker();
    closers.push(() => broker.stop());
    const port = await startPortStandIn();
    closers.push(() => port.close());
    const target = await startWebhookTarget({ secret: port.clientSecret, respond: () => ({ status: 200, delayMs: TARGET_LATENCY_MS }) });
    closers.push(() => target.close());
    const producer: Producer = await createProducer(broker.brokers);
    let isProducerConnected = true;
    const disconnectProducer = async (): Promise<void> => {
      if (!isProducerConnected) return;
      isProducerConnected = false;
      await withTimeout(producer.disconnect(), PRODUCER_DISCONNECT_TIMEOUT_MS);
    };
    closers.push(disconnectProducer);
    const setup = agentSetup(broker, port, { ...AGENT_FAULT_ENV });
    await createTopics(broker.brokers, producer, [setup.runsTopic, setup.changeLogTopic]);
    const exits = new Map<AgentProcess, AgentExit>();

    const startScenarioAgent = (): AgentProcess => {
      const agent = startAgent(setup.env);
      void agent.exited.then((exit) => exits.set(agent, exit));
      closers.push(() => agent.stop(AGENT_STOP_TIMEOUT_MS));
      return agent;
    };

    const committedByPartition = async (load: RunLoad): Promise<number[]> => {
      const offsets = await committedOffsets(broker.brokers, setup.groupId, setup.runsTopic);
      // '-1' (no commit yet) covers nothing.
      return load.byPartition.map((_, partition) => Math.max(0, Number(offsets.get(partition) ?? '-1')));
    };

    const at = (timeMs: number): string => `+${((timeMs - startedAtMs) / 1000).toFixed(1)} s`;

    return {
      broker,
      port,
      target,
      setup,
      startAgent: startScenarioAgent,
      startConsumingAgent: async () => {
        const agent = startScenarioAgent();
        await agent.waitForLog(isConsuming, AGENT_JOIN_TIMEOUT_MS);
        return agent;
      },
      exitOf: (agent) => exits.get(agent),
      startLoad: (plan) => {
        const load = startRunLoad({ producer, topic: setup.runsTopic, url: `${target.url}/runs`, secret: port.clientSecret, runIdPrefix, plan });
        closers.push(() => load.stop());
        return load;
      },
      waitForDelivered: async (count) => {
        await waitFor(() => deliveredCount(target) >= count, {
          timeoutMs: DELIVERY_WAIT_TIMEOUT_MS,
          intervalMs: DELIVERY_POLL_INTERVAL_MS,
          description: `${count} runs delivered`,
        });
      },
      waitUntilAllCommitted: async (load) => {
        const isAllCommitted = async (): Promise<boolean> => {
          try {
            const committed = await committedByPartition(load);
            return load.byPartition.every((runIds, partition) => (committed[partition] ?? 0) >= runIds.length);
          } catch {
            return false; // the coordinator may be busy with a rebalance: ask again
          }
        };
        return waitFor(isAllCommitted, { timeoutMs: COMMIT_WAIT_TIMEOUT_MS, intervalMs: COMMIT_POLL_INTERVAL_MS }).catch(() => false);
      },
      committedRunIds: async (load) => {
        const committed = await committedByPartition(load);
        return load.byPartition.flatMap((runIds, partition) => runIds.slice(0, committed[partition] ?? 0));
      },
      tally: (load) => tallyRuns(load.sent, target, port),
      disconnectProducer,
      log: (text) => console.log(`  ${at(Date.now()).padStart(8)}  ${text}`),
      at,
      close,
    };
  }
}
