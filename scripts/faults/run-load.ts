/**
 * A paced stream of signed, synchronized action runs on a fresh runs topic: the load a fault hits.
 * Partitions are chosen here, round-robin, and sends are sequential, so the run at offset `o` of
 * partition `p` is `byPartition[p][o]` — which tells which runs a committed offset covers.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Producer } from 'kafkajs';
import { produce } from '../../test/support/kafka.js';
import { actionRunMessage, signed } from '../../test/support/messages.js';

/** The mock cluster creates topics with 4 partitions on first use (docs/development.md). */
export const TOPIC_PARTITIONS = 4;
/** Runs per produce call: small, so the pace is smooth and a pause takes effect quickly. */
const RUNS_PER_BATCH = 5;
const RUN_ID_DIGITS = 4;

export interface LoadPlan {
  /** Runs to produce in all. */
  runs: number;
  /** Production pace. */
  runsPerSecond: number;
}

export interface RunLoadDeps {
  producer: Producer;
  topic: string;
  /** Where every run is sent (the invocation method's `url`). */
  url: string;
  /** The org's client secret: Port signs runs-topic messages with it. */
  secret: string;
  /** Makes run ids unique per scenario. */
  runIdPrefix: string;
  plan: LoadPlan;
}

export interface RunLoad {
  /** Run ids the broker acknowledged, in production order. */
  readonly sent: readonly string[];
  /** Per partition, the acknowledged run ids in offset order (the topic is new: index = offset). */
  readonly byPartition: readonly (readonly string[])[];
  /** Settles once every run is produced or the load is stopped; rejects when a send fails. */
  readonly finished: Promise<void>;
  /** Stops producing; resolves once no send is in flight, so nothing reaches the broker after it. */
  pause(): Promise<void>;
  resume(): void;
  /** Stops for good; resolves once no send is in flight. */
  stop(): Promise<void>;
}

export function startRunLoad(deps: RunLoadDeps): RunLoad {
  const { producer, topic, url, secret, runIdPrefix, plan } = deps;
  if (!Number.isInteger(plan.runs) || plan.runs < 1) throw new Error(`Expected \`runs\` to be a positive integer (actual: ${plan.runs}).`);
  if (!(plan.runsPerSecond > 0)) throw new Error(`Expected \`runsPerSecond\` to be positive (actual: ${plan.runsPerSecond}).`);
  const batchIntervalMs = (RUNS_PER_BATCH / plan.runsPerSecond) * 1000;
  const sent: string[] = [];
  const byPartition: string[][] = Array.from({ length: TOPIC_PARTITIONS }, () => []);
  let isPaused = false;
  let isStopped = false;
  let releasePause: (() => void) | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const runId = (index: number): string => `${runIdPrefix}-${String(index).padStart(RUN_ID_DIGITS, '0')}`;

  async function sendBatch(first: number, count: number): Promise<void> {
    const batch = Array.from({ length: count }, (_, offset) => {
      const index = first + offset;
      return { runId: runId(index), partition: index % TOPIC_PARTITIONS };
    });
    await produce(
      producer,
      topic,
      batch.map(({ runId: id, partition }) => ({ partition, value: signed(actionRunMessage({ runId: id, url, synchronized: true }), secret) })),
    );
    // Recorded only once acknowledged: a run counts as sent when it is on the topic.
    for (const { runId: id, partition } of batch) {
      sent.push(id);
      byPartition[partition]?.push(id);
    }
  }

  async function produceAll(): Promise<void> {
    let next = 0;
    while (next < plan.runs && !isStopped) {
      if (isPaused) {
        await new Promise<void>((resolve) => {
          releasePause = resolve;
        });
        continue;
      }
      const count = Math.min(RUNS_PER_BATCH, plan.runs - next);
      const sending = sendBatch(next, count);
      inFlight = sending.catch(() => undefined);
      await sending;
      next += count;
      await delay(batchIntervalMs);
    }
  }

  const release = (): void => {
    releasePause?.();
    releasePause = undefined;
  };

  const finished = produceAll();
  // Awaited by the scenario later; until then a failed send must not count as unhandled.
  finished.catch(() => undefined);

  return {
    sent,
    byPartition,
    finished,
    pause: () => {
      isPaused = true;
      return inFlight;
    },
    resume: () => {
      isPaused = false;
      release();
    },
    stop: () => {
      isStopped = true;
      release();
      return inFlight;
    },
  };
}
