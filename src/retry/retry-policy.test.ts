import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRetryableStatus, retryAfterMs, withRetries } from './retry-policy.js';
import type { AttemptOutcome } from './retry-policy.js';

const FAST = { retries: 3, minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryTimeMs: 10_000 };

describe('withRetries', () => {
  it('retries a retryable outcome until it is done, telling each retry', async () => {
    const notices: string[] = [];
    const outcomes: AttemptOutcome<number>[] = [
      { kind: 'retryable', value: 503, reason: 'status 503' },
      { kind: 'retryable', value: 0, reason: 'connection refused' },
      { kind: 'done', value: 200 },
    ];
    const result = await withRetries(async (attempt) => outcomes[attempt - 1]!, FAST, (notice) => {
      notices.push(`${notice.attemptNumber}:${notice.reason}:${notice.retriesLeft}`);
    });
    assert.deepEqual(result, { value: 200, attempts: 3 });
    assert.deepEqual(notices, ['1:status 503:3', '2:connection refused:2']);
  });

  it('returns the last value when the retries are spent', async () => {
    const result = await withRetries(async () => ({ kind: 'retryable' as const, value: 503, reason: 'status 503' }), FAST);
    assert.deepEqual(result, { value: 503, attempts: 4 });
  });

  it('stops at the total time bound', async () => {
    let calls = 0;
    const startedAt = Date.now();
    await withRetries(
      async () => {
        calls += 1;
        return { kind: 'retryable' as const, value: 0, reason: 'slow' };
      },
      { retries: 100, minTimeoutMs: 20, maxTimeoutMs: 20, maxRetryTimeMs: 100 },
    );
    assert.ok(calls < 10, `stopped early (${calls} calls)`);
    assert.ok(Date.now() - startedAt < 1000);
  });

  it('waits at least what Retry-After asks', async () => {
    let second = 0;
    const first = Date.now();
    await withRetries(async (attempt) => {
      if (attempt === 1) return { kind: 'retryable', value: 429, reason: 'status 429', retryAfterMs: 150 };
      second = Date.now();
      return { kind: 'done', value: 200 };
    }, FAST);
    assert.ok(second - first >= 150, `waited ${second - first} ms`);
  });

  it('makes one attempt and tells nothing when the first one is done', async () => {
    let calls = 0;
    const notices: unknown[] = [];
    const result = await withRetries(async () => {
      calls += 1;
      return { kind: 'done' as const, value: 200 };
    }, FAST, (notice) => {
      notices.push(notice);
    });
    assert.deepEqual(result, { value: 200, attempts: 1 });
    assert.equal(calls, 1);
    assert.deepEqual(notices, []);
  });

  it('counts the time of the first attempt in the total time bound', async () => {
    let calls = 0;
    const result = await withRetries(
      async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 150));
        return { kind: 'retryable' as const, value: 504, reason: 'slow and failing' };
      },
      { retries: 5, minTimeoutMs: 50, maxTimeoutMs: 50, maxRetryTimeMs: 100 },
    );
    assert.deepEqual(result, { value: 504, attempts: 1 });
    assert.equal(calls, 1, 'no retry starts after the budget is spent');
  });

  it('does not retry an error thrown by a later attempt either', async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(async (attempt) => {
        calls += 1;
        if (attempt === 1) return { kind: 'retryable', value: 503, reason: 'status 503' };
        throw new Error('a bug in attempt 2');
      }, FAST),
      /a bug in attempt 2/,
    );
    assert.equal(calls, 2);
  });

  it('does not retry an error thrown by the attempt', async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls += 1;
        throw new Error('a bug');
      }, FAST),
      /a bug/,
    );
    assert.equal(calls, 1);
  });
});

describe('retry helpers', () => {
  it('knows which statuses are worth another attempt', () => {
    assert.deepEqual([200, 400, 401, 404, 408, 429, 500, 502, 503].map(isRetryableStatus), [false, false, false, false, true, true, true, true, true]);
  });

  it('reads Retry-After in seconds or as a date, bounded', () => {
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs(new Date(10_000 + 3_000).toUTCString(), 10_000), 3000);
    assert.equal(retryAfterMs('86400'), 60_000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
});
