import type { TopicRole } from '../message/invocation.js';

/** One message from a source, with where it came from for logs and commits. */
export interface SourceMessage {
  topic: string;
  partition: number;
  offset: string;
  role: TopicRole;
  value: Buffer | null;
}

/**
 * How the handling of one message ended. Every outcome means "handled": the source may commit.
 * - delivered: the service answered below 400 and the result was reported
 * - failed: the run failed (service error, agent-side failure) and was reported as such
 * - skipped: deliberately not ours (agent: false, no matching mapping)
 * - dropped: refused (bad signature, unreadable message)
 */
export type HandleOutcome = 'delivered' | 'failed' | 'skipped' | 'dropped';

export type MessageHandler = (message: SourceMessage) => Promise<HandleOutcome>;

/** Where messages come from: Kafka now, Port's polling API later. The source owns commit/ack. */
export interface Source {
  /** Resolves once consumption has started; messages then flow to the handler. */
  start(handler: MessageHandler): Promise<void>;
  /** Stops taking messages, lets in-flight ones finish within the grace period, commits, disconnects. */
  stop(): Promise<void>;
}
