/**
 * The Kafka source's consumers one after another: the first started when the source starts, a
 * fresh one built whenever the supervisor or a defective batch asks for a rebuild. Rebuilds queue
 * behind each other, and each waits the restart backoff first, so a consumer that keeps failing
 * (an ACL that refuses the group, say) is retried ever more slowly.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Backoff } from '../retry/backoff.js';
import { startConsumer } from './kafka-consumer-start.js';
import type { ConsumerConnector, ConsumerListeners, ConsumerSettings, EachBatch, StartHooks, SupervisedConsumer } from './kafka-consumer-start.js';
import type { SourceActivity } from './source-activity.js';

export interface ConsumerRestartsDeps {
  connector: ConsumerConnector;
  settings: ConsumerSettings;
  listeners: ConsumerListeners;
  /** Grows with each failed start or rebuild; the supervisor resets it once the group is joined. */
  backoff: Backoff;
  activity: SourceActivity;
  isStopping(): boolean;
  /** A batch of the current consumer failed: its partitions are given up before the rebuild. */
  onDefect(): void;
  sleep(ms: number): Promise<void>;
  logger: Logger;
}

export interface ConsumerRestarts {
  /** Resolves once a consumer runs, retrying until one does or the source stops. */
  start(eachBatch: EachBatch): Promise<void>;
  /** Queues a rebuild: the current consumer is disconnected and, after the backoff, replaced. */
  rebuild(): void;
  /** The consumer running or being started; undefined while a rebuild waits. */
  readonly current: SupervisedConsumer | undefined;
}

export function createConsumerRestarts(deps: ConsumerRestartsDeps): ConsumerRestarts {
  const { activity, logger } = deps;
  let consumer: SupervisedConsumer | undefined;
  let eachBatch: EachBatch | undefined;
  let restarting: Promise<void> | undefined;

  async function waitToRetry(waitMs: number): Promise<void> {
    activity.attempted();
    await deps.sleep(waitMs);
  }

  async function startWithRetry(): Promise<void> {
    if (!eachBatch) return;
    const hooks: StartHooks = {
      onBatch: eachBatch,
      built(created) {
        consumer = created;
      },
      defect: failWithDefect,
    };
    await startConsumer({ ...deps, waitToRetry }, hooks);
  }

  async function rebuildNow(): Promise<void> {
    activity.state = 'reconnecting';
    const previous = consumer;
    consumer = undefined;
    await previous?.disconnect().catch((error: unknown) => logger.warn({ err: describeError(error) }, 'disconnecting the crashed consumer failed'));
    // A consumer that keeps failing (an ACL that refuses the group, say) is retried ever more slowly.
    await waitToRetry(deps.backoff.failed());
    await startWithRetry();
  }

  /**
   * kafkajs reports a failed first join from inside run(), possibly while a rebuild is still
   * starting this very consumer: queue another rebuild rather than dropping the crash.
   */
  function rebuild(): void {
    const rebuilt: Promise<void> = (restarting ?? Promise.resolve())
      .then(rebuildNow)
      // A defect (a start retries every failure it meets): logged; with no consumer the liveness probe fails in time.
      .catch((error: unknown) => logger.error({ err: describeError(error) }, 'rebuilding the Kafka consumer failed unexpectedly'))
      .finally(() => {
        if (restarting === rebuilt) restarting = undefined;
      });
    restarting = rebuilt;
  }

  /** The handler must never reject; if it does, start over from the last commit rather than skip. */
  function failWithDefect(generation: SupervisedConsumer): void {
    if (deps.isStopping() || generation !== consumer) return;
    deps.onDefect();
    rebuild();
  }

  return {
    async start(onBatch) {
      eachBatch = onBatch;
      await startWithRetry();
    },
    rebuild,
    get current() {
      return consumer;
    },
  };
}
