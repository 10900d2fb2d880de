/** What a source says of itself, in terms the probes and metrics read without knowing the source. */

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
  /** Per partition held: messages past the next offset to commit, as of its last fetch. */
  lag: readonly PartitionLag[];
  /** Per partition held: messages on the brokers past the group's position (Kafka; polling: none). */
  backlog: readonly PartitionLag[];
}
