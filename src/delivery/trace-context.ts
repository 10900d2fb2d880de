/**
 * W3C Trace Context for the request a run sends (issue 6): the run continues the trace of a
 * `traceparent` that came with its message, else starts one, so an operator can follow a run from
 * the agent's log lines (`traceId`) into the internal service's traces.
 * https://www.w3.org/TR/trace-context/#traceparent-header
 */
import { randomFillSync } from 'node:crypto';

export interface TraceContext {
  /** 32 lower-case hex digits, on every log line of the run. */
  traceId: string;
  /** The header to send: our span, child of the incoming one when there was one. */
  traceparent: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const INVALID_TRACE_ID = '0'.repeat(32);
const INVALID_PARENT_ID = '0'.repeat(16);
const SAMPLED = '01';
/** Random bytes are drawn 4 KiB at a time: one draw per run cost ~20 µs in the agent's profile. */
const RANDOM_POOL_BYTES = 4096;

let randomPool = Buffer.alloc(0);
let randomOffset = 0;

/** `size` cryptographically random bytes from a pool refilled when spent; ids need no more than that. */
export function pooledRandomBytes(size: number): Buffer {
  if (randomOffset + size > randomPool.length) {
    randomPool = randomFillSync(Buffer.allocUnsafe(Math.max(RANDOM_POOL_BYTES, size)));
    randomOffset = 0;
  }
  const bytes = randomPool.subarray(randomOffset, randomOffset + size);
  randomOffset += size;
  return bytes;
}

/** The trace id and flags of a valid `traceparent`, else undefined (then a new trace starts). */
export function parseTraceparent(header: string | undefined): { traceId: string; flags: string } | undefined {
  if (header === undefined) return undefined;
  const match = TRACEPARENT.exec(header.trim().toLowerCase());
  if (!match) return undefined;
  const [, version, traceId, parentId, flags, rest] = match;
  // Version ff is forbidden; version 00 has nothing after the flags.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === INVALID_TRACE_ID || parentId === INVALID_PARENT_ID || traceId === undefined || flags === undefined) return undefined;
  return { traceId, flags };
}

export function traceContextFor(incoming: string | undefined, random: (size: number) => Buffer = pooledRandomBytes): TraceContext {
  const parent = parseTraceparent(incoming);
  const traceId = parent?.traceId ?? random(16).toString('hex');
  const spanId = random(8).toString('hex');
  return { traceId, traceparent: `00-${traceId}-${spanId}-${parent?.flags ?? SAMPLED}` };
}
