/**
 * Keeps one bad internal service from holding the others hostage (issue 5): at most `perHostLimit`
 * requests to a host at once, and a circuit breaker that stops sending to a host that keeps
 * failing — after `failureThreshold` failures in a row it refuses at once for a cool-down that
 * doubles while the host stays down, then lets one probe through.
 *
 * It keeps state for the hosts in use, not for every host ever seen: a mapping that builds the URL
 * from the run (a host per tenant) reaches thousands of hosts, and the state of each would stay.
 */
import { createSemaphore } from '../concurrency/semaphore.js';
import type { Semaphore } from '../concurrency/semaphore.js';
import type { CircuitState, HostCircuit } from '../shared/circuit-state.js';

export interface HostGuardOptions {
  perHostLimit: number;
  failureThreshold?: number;
  initialCooldownMs?: number;
  maxCooldownMs?: number;
  /**
   * A host with failures unused this long, nothing in flight or waiting, is forgotten (checked at
   * most once per this period, so it goes between one and two periods after its last use); a
   * host whose last request succeeded is dropped as soon as nothing is in flight.
   */
  forgetIdleAfterMs?: number;
  now?: () => number;
}

export type HostEntry = { kind: 'entered'; leave: (succeeded: boolean) => void } | { kind: 'open'; retryInMs: number };

export interface HostGuard {
  /** Waits for a slot on the host, or says its circuit is open. `leave` reports how it went. */
  enter(host: string): Promise<HostEntry>;
  /** Hosts the guard keeps state for now. */
  readonly hostCount: number;
  /** The circuit of each host whose last requests failed, until the guard forgets it (5 minutes unused). */
  circuits(): HostCircuit[];
}

const DEFAULT_FAILURE_THRESHOLD = 5;
const DEFAULT_INITIAL_COOLDOWN_MS = 5_000;
const DEFAULT_MAX_COOLDOWN_MS = 60_000;
/**
 * A host whose last request succeeded, with nothing in flight or waiting, is dropped at once: its
 * state is that of a host never seen. A host with failures is kept this long after its last use,
 * well past the longest wait between two attempts at one host (a Retry-After is followed up to
 * 60 s, the cool-down grows to 60 s), so a host that fails run after run keeps its count and its
 * open circuit. Unused this long, even a tripped host is forgotten: its cool-down is long over, so
 * its next request would have been let through as a probe anyway, and a host a tenant no longer
 * uses costs nothing after it.
 */
export const IDLE_HOST_FORGET_AFTER_MS = 5 * 60_000;

interface HostState {
  slots: Semaphore;
  consecutiveFailures: number;
  /** While in the future, the circuit is open. */
  openUntilMs: number;
  cooldownMs: number;
  isProbing: boolean;
  lastUsedMs: number;
}

export function createHostGuard(options: HostGuardOptions): HostGuard {
  const failureThreshold = options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
  const initialCooldownMs = options.initialCooldownMs ?? DEFAULT_INITIAL_COOLDOWN_MS;
  const maxCooldownMs = options.maxCooldownMs ?? DEFAULT_MAX_COOLDOWN_MS;
  const forgetIdleAfterMs = options.forgetIdleAfterMs ?? IDLE_HOST_FORGET_AFTER_MS;
  if (!Number.isFinite(forgetIdleAfterMs) || forgetIdleAfterMs <= 0) {
    throw new RangeError(`Expected \`forgetIdleAfterMs\` to be a positive number of milliseconds (actual: ${forgetIdleAfterMs})`);
  }
  const now = options.now ?? Date.now;
  const hosts = new Map<string, HostState>();
  let lastSweepMs = now();

  function stateOf(host: string, nowMs: number): HostState {
    let state = hosts.get(host);
    if (!state) {
      state = { slots: createSemaphore(options.perHostLimit), consecutiveFailures: 0, openUntilMs: 0, cooldownMs: initialCooldownMs, isProbing: false, lastUsedMs: nowMs };
      hosts.set(host, state);
    }
    return state;
  }

  const isIdle = (state: HostState): boolean => state.slots.active === 0 && state.slots.waiting === 0 && !state.isProbing;

  function isForgettable(state: HostState, nowMs: number): boolean {
    return isIdle(state) && nowMs >= state.openUntilMs && nowMs - state.lastUsedMs >= forgetIdleAfterMs;
  }

  /**
   * One pass over the hosts at most once per `forgetIdleAfterMs` (or when the clock went back),
   * from `enter`: each host is looked at once per period, not on every call, and no timer is left
   * to stop.
   */
  function sweepIfDue(nowMs: number): void {
    if (nowMs - lastSweepMs < forgetIdleAfterMs && nowMs >= lastSweepMs) return;
    lastSweepMs = nowMs;
    for (const [host, state] of hosts) {
      if (isForgettable(state, nowMs)) hosts.delete(host);
    }
  }

  function record(state: HostState, succeeded: boolean, wasProbe: boolean): void {
    if (wasProbe) state.isProbing = false;
    if (succeeded) {
      state.consecutiveFailures = 0;
      state.cooldownMs = initialCooldownMs;
      return;
    }
    state.consecutiveFailures += 1;
    if (wasProbe || state.consecutiveFailures >= failureThreshold) {
      state.openUntilMs = now() + state.cooldownMs;
      state.cooldownMs = Math.min(state.cooldownMs * 2, maxCooldownMs);
    }
  }

  function circuitOf(state: HostState, nowMs: number): CircuitState {
    if (state.consecutiveFailures < failureThreshold) return 'closed';
    return nowMs < state.openUntilMs ? 'open' : 'half-open';
  }

  return {
    async enter(host) {
      const nowMs = now();
      sweepIfDue(nowMs);
      const state = stateOf(host, nowMs);
      state.lastUsedMs = nowMs;
      const isTripped = state.consecutiveFailures >= failureThreshold;
      if (isTripped && (now() < state.openUntilMs || state.isProbing)) {
        return { kind: 'open', retryInMs: Math.max(0, state.openUntilMs - now()) };
      }
      // Half-open: the first request after the cool-down probes the host alone.
      const isProbe = isTripped;
      if (isProbe) state.isProbing = true;
      const release = await state.slots.acquire();
      return {
        kind: 'entered',
        leave: (succeeded) => {
          release();
          state.lastUsedMs = now();
          record(state, succeeded, isProbe);
          if (state.consecutiveFailures === 0 && isIdle(state) && hosts.get(host) === state) hosts.delete(host);
        },
      };
    },
    get hostCount() {
      return hosts.size;
    },
    circuits() {
      const nowMs = now();
      // Only failing hosts, and not those the next sweep forgets: on an agent that gets no more
      // runs, a tripped host would otherwise read half-open for ever.
      return [...hosts].filter(([, state]) => state.consecutiveFailures > 0 && !isForgettable(state, nowMs)).map(([host, state]) => ({ host, state: circuitOf(state, nowMs) }));
    },
  };
}
