import type { TopicRole } from '../message/invocation.js';

/** One message from a source, with where it came from for logs and commits. */
export interface SourceMessage {
  topic: string;
  partition: number;
  offset: string;
  role: TopicRole;
  /**
   * Where the message came from. Runs-topic messages from Kafka carry Port's signature; change-log
   * events do not. A run claimed from Port's polling API came over an authenticated call, unsigned,
   * and is this agent's whatever it says: Port handed it over, and no other agent will see it.
   */
  origin: 'kafka' | 'claimed';
  value: Buffer | null;
  /** A W3C `traceparent` that came with the message (a Kafka record header), to continue its trace. */
  traceparent: string | undefined;
}

/**
 * How the handling of one message ended. Every outcome means "handled": the source may commit once
 * the message's reports are settled.
 * - delivered: the service answered below 400 and the result was reported
 * - failed: the run failed (service error, agent-side failure) and was reported as such
 * - skipped: deliberately not ours (agent: false, no matching mapping)
 * - dropped: refused (bad signature, unreadable message)
 */
export type HandleOutcome = 'delivered' | 'failed' | 'skipped' | 'dropped';

/**
 * A handled message: how it ended, once the internal service has it (or the run failed), and when
 * Port has heard of it. The source gives the message's place back on the first and commits on the
 * second, so a crash before Port heard means redelivery, never a lost report. `reported` never
 * rejects.
 */
export interface Handled {
  outcome: HandleOutcome;
  /** Undefined when nothing was reported (a change-log event, a skipped or dropped message). */
  reported: Promise<void> | undefined;
}

export type MessageHandler = (message: SourceMessage) => Promise<Handled>;

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Messages on the partition past the next offset the source will commit. */
  lag: number;
}

/**
 * What a source says of itself, for probes and metrics.
 * - starting: connecting for the first time
 * - consuming: a member of its group with partitions (polling: the last poll succeeded)
 * - standby: a member of its group without partitions, waiting for a rebalance
 * - reconnecting: lost the broker or the group, trying again (polling: backing off after failed polls)
 * - stopped: stopped on request
 */
export interface SourceStatus {
  state: 'starting' | 'consuming' | 'standby' | 'reconnecting' | 'stopped';
  /** Last time the broker answered (heartbeat, fetch, join, commit; polling: a claim), ms since the epoch. */
  lastBrokerAnswerAtMs: number;
  /** Last time the source did anything at all, answered or not (a request, a crash, a retry). */
  lastAttemptAtMs: number;
  /** Messages handed to the handler and not finished. */
  messagesInHand: number;
  /** Per partition held: messages past the next offset to commit. */
  lag: readonly PartitionLag[];
}

/** Where messages come from: Kafka, or Port's polling API (SPEC §8). The source owns commit/ack. */
export interface Source {
  /** Resolves once consumption has started; messages then flow to the handler. */
  start(handler: MessageHandler): Promise<void>;
  /** Stops taking messages, lets in-flight ones finish within the grace period, commits, disconnects. */
  stop(): Promise<void>;
  status(): SourceStatus;
}
