/** Options for {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs?: number;
  /** Pause between probes. */
  intervalMs?: number;
  /** What is being waited for; named in the timeout error. A function is asked at the timeout, so it can say what is still missing. */
  description?: string | (() => string);
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_INTERVAL_MS = 20;

type Falsy = undefined | null | false | 0 | '';

/**
 * Polls `probe` until it returns (or resolves to) a truthy value and returns that value.
 * Tests wait on conditions, never on fixed sleeps. A probe that throws fails the wait at once.
 */
export async function waitFor<T>(
  probe: () => T | Falsy | Promise<T | Falsy>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = DEFAULT_INTERVAL_MS, description = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) {
      const said = typeof description === 'function' ? description() : description;
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${said}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}
