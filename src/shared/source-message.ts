/**
 * What a source hands the pipeline and what it gets back: the types sources, the pipeline and the
 * metrics all speak of, kept here so none of them imports another for its vocabulary.
 */

/** Which of the two subscribed topics a message came from. */
export type TopicRole = 'runs' | 'changelog';

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
  /**
   * When Port produced it, ms since the epoch: the Kafka record's timestamp, or a claimed run's
   * `createdAt`; undefined when unknown. The start of a run's end-to-end time in the metrics.
   */
  producedAtMs?: number | undefined;
}

/**
 * How the handling of one message ended. Every outcome means "handled": the source may commit once
 * the message's reports are settled.
 * - delivered: the service answered below 400 and the result was reported
 * - failed: the run failed (service error, agent-side failure) and was reported as such
 * - skipped: deliberately not ours (agent: false, no matching mapping)
 * - dropped: refused (bad signature, unreadable message)
 */
export const HANDLE_OUTCOMES = ['delivered', 'failed', 'skipped', 'dropped'] as const;
export type HandleOutcome = (typeof HANDLE_OUTCOMES)[number];

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
