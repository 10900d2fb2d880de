import type { MessageHandler } from '../shared/source-message.js';
import type { SourceStatus } from '../shared/source-status.js';

/** Where messages come from: Kafka, or Port's polling API (SPEC §8). The source owns commit/ack. */
export interface Source {
  /** Resolves once consumption has started; messages then flow to the handler. */
  start(handler: MessageHandler): Promise<void>;
  /** Stops taking messages, lets in-flight ones finish within the grace period, commits, disconnects. */
  stop(): Promise<void>;
  status(): SourceStatus;
}
