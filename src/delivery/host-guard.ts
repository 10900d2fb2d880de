/**
 * Keeps one bad internal service from holding the others hostage (issue 5): at most `perHostLimit`
 * requests to a host at once, and a circuit breaker that stops sending to a host that keeps
 * failing — after `failureThreshold` failures in a row it refuses at once for a cool-down that
 * doubles while the host stays down, then lets one probe through.
 */
import { createSemaphore } from '../concurrency/semaphore.js';
import type { Semaphore } from '../concurrency/semaphore.js';

export interface HostGuardOptions {
  perHostLimit: number;
  failureThreshold?: number;
  initialCooldownMs?: number;
  maxCooldownMs?: number;
  now?: () => number;
}

export type HostEntry = { kind: 'entered'; leave: (succeeded: boolean) => void } | { kind: 'open'; retryInMs: number };

export interface HostGuard {
  /** Waits for a slot on the host, or says its circuit is open. `leave` reports how it went. */
  enter(host: string): Promise<HostEntry>;
}

const DEFAULT_FAILURE_THRESHOLD = 5;
const DEFAULT_INITIAL_COOLDOWN_MS = 5_000;
const DEFAULT_MAX_COOLDOWN_MS = 60_000;

interface HostState {
  slots: Semaphore;
  consecutiveFailures: number;
  /** While in the future, the circuit is open. */
  openUntilMs: number;
  cooldownMs: number;
  isProbing: boolean;
}

export function createHostGuard(options: HostGuardOptions): HostGuard {
  const failureThreshold = options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
  const initialCooldownMs = options.initialCooldownMs ?? DEFAULT_INITIAL_COOLDOWN_MS;
  const maxCooldownMs = options.maxCooldownMs ?? DEFAULT_MAX_COOLDOWN_MS;
  const now = options.now ?? Date.now;
  const hosts = new Map<string, HostState>();

  function stateOf(host: string): HostState {
    let state = hosts.get(host);
    if (!state) {
      state = { slots: createSemaphore(options.perHostLimit), consecutiveFailures: 0, openUntilMs: 0, cooldownMs: initialCooldownMs, isProbing: false };
      hosts.set(host, state);
    }
    return state;
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

  return {
    async enter(host) {
      const state = stateOf(host);
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
          record(state, succeeded, isProbe);
        },
      };
    },
  };
}
