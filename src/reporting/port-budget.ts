/**
 * Port's API budget as the agent sees it. Port gives each organisation a number of calls per
 * period (15,000 per 5 minutes) for everything but entities, announces what is left in
 * `x-ratelimit-*` headers, and answers 429 past it. Every Port call waits here for its turn:
 * calls are paced so the remaining budget lasts until the reset, a 429 holds every call until
 * the reset (or `Retry-After`), and when calls must wait, the most important go first.
 */
import type { Logger } from '../log.js';
import { retryAfterMs } from '../retry/retry-policy.js';

/**
 * Which call goes first when calls wait, highest first: what the agent cannot work without
 * (tokens, Kafka credentials, polling claims and acks, the organisation patch), then final
 * statuses and node-run results, then synchronous responses, then run-log lines.
 */
export type CallPriority = 'control' | 'final' | 'response' | 'log';
const PRIORITIES: readonly CallPriority[] = ['control', 'final', 'response', 'log'];

/** What one answer said about the budget. */
export interface BudgetAnnouncement {
  limit: number | undefined;
  remaining: number | undefined;
  /** When the window resets, ms since the epoch. */
  resetAtMs: number | undefined;
  periodMs: number | undefined;
}

/** Port's docs give `x-ratelimit-reset` both as seconds from now and as epoch seconds. */
const EPOCH_SECONDS_THRESHOLD = 1e9;

function headerNumber(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

/** Reads the `x-ratelimit-*` headers of an answer; undefined when it carries none. */
export function readBudgetHeaders(headers: Record<string, string | undefined>, nowMs: number): BudgetAnnouncement | undefined {
  const limit = headerNumber(headers['x-ratelimit-limit']);
  const remaining = headerNumber(headers['x-ratelimit-remaining']);
  const reset = headerNumber(headers['x-ratelimit-reset']);
  const period = headerNumber(headers['x-ratelimit-period']);
  if (limit === undefined && remaining === undefined && reset === undefined) return undefined;
  const resetAtMs = reset === undefined ? undefined : reset > EPOCH_SECONDS_THRESHOLD ? reset * 1000 : nowMs + reset * 1000;
  return { limit, remaining, resetAtMs, periodMs: period === undefined ? undefined : period * 1000 };
}

/** What the caller tells the budget once its call is over. */
export interface CallAnswer {
  /** Undefined when no answer came (network error, timeout). */
  status: number | undefined;
  /** Lower-case names: the `x-ratelimit-*` headers and, with a 429, `retry-after`. */
  headers: Record<string, string | undefined>;
}

export interface BudgetMetrics {
  budgetRemaining(remaining: number): void;
  budgetWaited(seconds: number): void;
  rateLimited(route: string): void;
}

export interface PortBudgetDeps {
  /** PORT_API_MAX_CALLS_PER_SECOND: the agent's own ceiling; 0 leaves it to Port's headers. */
  maxCallsPerSecond: number;
  logger: Logger;
  metrics?: BudgetMetrics;
  now?: () => number;
}

export interface PortBudget {
  /**
   * Resolves when a call of this priority may go; call the returned function with the answer
   * (or undefined when the call was not made after all).
   */
  acquire(priority: CallPriority): Promise<(answer: CallAnswer | undefined, route: string) => void>;
  /** Whether calls have been waiting for the budget for a while: time to spend fewer. */
  isShort(): boolean;
  /** Resolves once the budget is no longer short (at once when it is not). */
  relieved(): Promise<void>;
  /** Calls waiting for their turn now. */
  waiting(): number;
}

/** A call that waited this long for its turn means the budget is short. */
const SHORT_AFTER_MS = 1_000;
/** After a 429 with neither `Retry-After` nor a reset: wait this long, doubling to the maximum. */
const BLIND_BACKOFF_MIN_MS = 1_000;
const BLIND_BACKOFF_MAX_MS = 30_000;

interface Waiter {
  enqueuedAtMs: number;
  resolve: () => void;
}

export function createPortBudget(deps: PortBudgetDeps): PortBudget {
  const now = deps.now ?? Date.now;
  const queues = new Map<CallPriority, Waiter[]>(PRIORITIES.map((priority) => [priority, []]));
  let known: BudgetAnnouncement | undefined;
  let inFlight = 0;
  let lastDispatchAtMs = 0;
  let blockedUntilMs = 0;
  let blindBackoffMs = BLIND_BACKOFF_MIN_MS;
  let timer: NodeJS.Timeout | undefined;
  let shortSinceMs: number | undefined;
  /** While short: since when no call has waited. The shortage ends after a quiet second. */
  let quietSinceMs: number | undefined;
  let relief: { promise: Promise<void>; resolve: () => void } | undefined;

  const waitingCount = (): number => [...queues.values()].reduce((total, queue) => total + queue.length, 0);

  function nextWaiter(): Waiter | undefined {
    for (const priority of PRIORITIES) {
      const queue = queues.get(priority);
      if (queue !== undefined && queue.length > 0) return queue.shift();
    }
    return undefined;
  }

  function oldestWaitMs(at: number): number {
    let oldest = 0;
    for (const queue of queues.values()) {
      const first = queue[0];
      if (first !== undefined) oldest = Math.max(oldest, at - first.enqueuedAtMs);
    }
    return oldest;
  }

  /** Calls a second the budget allows now; Infinity when nothing limits them. */
  function allowedRate(at: number): number {
    const own = deps.maxCallsPerSecond > 0 ? deps.maxCallsPerSecond : Infinity;
    if (known === undefined) return own;
    const { remaining, resetAtMs, limit, periodMs } = known;
    if (remaining !== undefined && resetAtMs !== undefined && resetAtMs > at) {
      // Calls on the wire will be counted against what is left; spread the rest to the reset.
      const left = Math.max(0, remaining - inFlight);
      return Math.min(own, left / ((resetAtMs - at) / 1000));
    }
    // The announced window is over: the next one's budget, spread evenly, until an answer says more.
    if (limit !== undefined && periodMs !== undefined && periodMs > 0) return Math.min(own, limit / (periodMs / 1000));
    return own;
  }

  /** When the next call may go: never "never" — an exhausted budget waits for its reset. */
  function nextSlotAtMs(at: number): number {
    let slot = Math.max(at, blockedUntilMs);
    const rate = allowedRate(at);
    if (rate === 0) {
      const resetAtMs = known?.resetAtMs;
      slot = Math.max(slot, resetAtMs !== undefined && resetAtMs > at ? resetAtMs : at + BLIND_BACKOFF_MIN_MS);
    } else if (Number.isFinite(rate)) {
      slot = Math.max(slot, lastDispatchAtMs + 1000 / rate);
    }
    return slot;
  }

  function updateShortness(at: number): void {
    const isWaitingLong = oldestWaitMs(at) >= SHORT_AFTER_MS;
    if (shortSinceMs === undefined && isWaitingLong) {
      shortSinceMs = at;
      deps.logger.warn(
        { waiting: waitingCount(), remaining: known?.remaining, resetInSeconds: resetInSeconds(at), blockedForSeconds: Math.max(0, Math.ceil((blockedUntilMs - at) / 1000)) },
        "waiting for Port's API budget: Port calls are queued, final statuses first",
      );
      return;
    }
    if (shortSinceMs === undefined) return;
    if (waitingCount() > 0) {
      quietSinceMs = undefined;
      return;
    }
    // A queue that empties for a moment between bursts is not the end of a shortage: one warn
    // and one info line per shortage, not a pair per burst.
    quietSinceMs ??= at;
    if (at - quietSinceMs < SHORT_AFTER_MS) {
      timer ??= setTimeout(pump, SHORT_AFTER_MS - (at - quietSinceMs));
      return;
    }
    quietSinceMs = undefined;
    deps.logger.info({ waitedSeconds: Math.round((at - shortSinceMs) / 1000), remaining: known?.remaining }, "Port's API budget allows calls again: no call is waiting");
    shortSinceMs = undefined;
    relief?.resolve();
    relief = undefined;
  }

  function resetInSeconds(at: number): number | undefined {
    const resetAtMs = known?.resetAtMs;
    return resetAtMs === undefined ? undefined : Math.max(0, Math.ceil((resetAtMs - at) / 1000));
  }

  function pump(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    for (;;) {
      const at = now();
      updateShortness(at);
      if (waitingCount() === 0) return;
      const slot = nextSlotAtMs(at);
      if (slot > at) {
        // Wake at the slot, or sooner to notice that the budget has become short.
        timer = setTimeout(pump, Math.max(1, Math.ceil(Math.min(slot - at, SHORT_AFTER_MS))));
        return;
      }
      const waiter = nextWaiter();
      if (waiter === undefined) return;
      lastDispatchAtMs = at;
      inFlight += 1;
      const waitedMs = at - waiter.enqueuedAtMs;
      if (waitedMs > 0) deps.metrics?.budgetWaited(waitedMs / 1000);
      waiter.resolve();
    }
  }

  function learn(answer: CallAnswer, route: string): void {
    const at = now();
    const announced = readBudgetHeaders(answer.headers, at);
    if (announced !== undefined) {
      // Answers overtake each other: within one window the lowest `remaining` is the latest truth.
      const sameWindow = known?.resetAtMs !== undefined && announced.resetAtMs !== undefined && Math.abs(known.resetAtMs - announced.resetAtMs) < 1_000;
      const remaining =
        sameWindow && known?.remaining !== undefined && announced.remaining !== undefined ? Math.min(known.remaining, announced.remaining) : announced.remaining;
      known = { ...announced, remaining };
      if (remaining !== undefined) deps.metrics?.budgetRemaining(remaining);
    }
    if (answer.status === 429) {
      deps.metrics?.rateLimited(route);
      const resetAtMs = announced?.resetAtMs;
      const waitMs = retryAfterMs(answer.headers['retry-after'], at);
      // A `Retry-After` of 0 (or a date already past) would send the call again at once, and again.
      if (waitMs !== undefined && waitMs > 0) blockedUntilMs = Math.max(blockedUntilMs, at + waitMs);
      else if (resetAtMs !== undefined && resetAtMs > at) blockedUntilMs = Math.max(blockedUntilMs, resetAtMs);
      else {
        blockedUntilMs = Math.max(blockedUntilMs, at + blindBackoffMs);
        blindBackoffMs = Math.min(blindBackoffMs * 2, BLIND_BACKOFF_MAX_MS);
      }
    } else if (answer.status !== undefined) {
      blindBackoffMs = BLIND_BACKOFF_MIN_MS;
    }
  }

  return {
    acquire(priority) {
      return new Promise((resolve) => {
        let isDone = false;
        const done = (answer: CallAnswer | undefined, route: string): void => {
          if (isDone) return;
          isDone = true;
          inFlight -= 1;
          if (answer !== undefined) learn(answer, route);
          pump();
        };
        queues.get(priority)?.push({ enqueuedAtMs: now(), resolve: () => resolve(done) });
        pump();
      });
    },
    isShort: () => shortSinceMs !== undefined,
    relieved() {
      if (shortSinceMs === undefined) return Promise.resolve();
      if (relief === undefined) {
        let resolve: () => void = () => undefined;
        const promise = new Promise<void>((settle) => {
          resolve = settle;
        });
        relief = { promise, resolve };
      }
      return relief.promise;
    },
    waiting: waitingCount,
  };
}
