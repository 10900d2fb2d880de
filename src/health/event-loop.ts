/**
 * Watches the event loop for stalls: a timer that should fire every `intervalMs` notes how late
 * it fired, and the longest delay of the last `windowMs` is kept. A probe served between two long
 * blocks still sees them.
 */
export interface EventLoopWatch {
  /** The longest delay of the timer within the window, in ms (0 when the loop is healthy). */
  maxRecentDelayMs(): number;
  stop(): void;
}

export function watchEventLoop(options: { intervalMs: number; windowMs: number; now?: () => number }): EventLoopWatch {
  const now = options.now ?? (() => performance.now());
  const delays: { atMs: number; delayMs: number }[] = [];
  let expectedAtMs = now() + options.intervalMs;
  const timer = setInterval(() => {
    const atMs = now();
    const delayMs = Math.max(0, atMs - expectedAtMs);
    expectedAtMs = atMs + options.intervalMs;
    // Only delays worth remembering are kept: a healthy loop leaves the list empty.
    if (delayMs >= options.intervalMs) delays.push({ atMs, delayMs });
    while (delays.length > 0 && (delays[0]?.atMs ?? atMs) < atMs - options.windowMs) delays.shift();
  }, options.intervalMs);
  // The watch never keeps the process alive on its own.
  timer.unref();
  return {
    maxRecentDelayMs() {
      const cutoff = now() - options.windowMs;
      // A timer due but not fired yet (the loop just came back from a block) is late already.
      let longest = Math.max(0, now() - expectedAtMs);
      for (const entry of delays) if (entry.atMs >= cutoff && entry.delayMs > longest) longest = entry.delayMs;
      return longest;
    },
    stop: () => clearInterval(timer),
  };
}
