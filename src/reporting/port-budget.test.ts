import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import { createPortBudget, readBudgetHeaders } from './port-budget.js';
import type { CallAnswer, CallPriority, PortBudget } from './port-budget.js';

const ok = (headers: Record<string, string> = {}): CallAnswer => ({ status: 200, headers });

/** Makes one call through the budget answered with `answer`; resolves with when it was let through. */
async function callThrough(budget: PortBudget, priority: CallPriority, answer: CallAnswer = ok()): Promise<number> {
  const done = await budget.acquire(priority);
  const at = Date.now();
  done(answer, 'POST /v1/actions/runs/:runId/logs');
  return at;
}

describe('readBudgetHeaders', () => {
  it('reads a reset in seconds from now, and one above 10^9 as epoch seconds', () => {
    const now = 1_700_000_000_000;
    assert.deepEqual(readBudgetHeaders({ 'x-ratelimit-limit': '15000', 'x-ratelimit-remaining': '42', 'x-ratelimit-reset': '30', 'x-ratelimit-period': '300' }, now), {
      limit: 15000,
      remaining: 42,
      resetAtMs: now + 30_000,
      periodMs: 300_000,
    });
    assert.equal(readBudgetHeaders({ 'x-ratelimit-reset': '1700000060' }, now)?.resetAtMs, 1_700_000_060_000);
  });

  it('says nothing of an answer without the headers, and ignores values that are not numbers', () => {
    assert.equal(readBudgetHeaders({ 'content-type': 'application/json' }, 0), undefined);
    assert.deepEqual(readBudgetHeaders({ 'x-ratelimit-remaining': 'lots', 'x-ratelimit-limit': '10' }, 0), { limit: 10, remaining: undefined, resetAtMs: undefined, periodMs: undefined });
  });
});

describe('the Port budget', () => {
  it('lets calls through at once when nothing limits them', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 0, logger: capturingLogger().logger });
    const startedAt = Date.now();
    await Promise.all(Array.from({ length: 50 }, () => callThrough(budget, 'log')));
    assert.ok(Date.now() - startedAt < 100);
  });

  it('paces calls to PORT_API_MAX_CALLS_PER_SECOND', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 20, logger: capturingLogger().logger });
    const times = await Promise.all(Array.from({ length: 6 }, () => callThrough(budget, 'log')));
    const spanMs = Math.max(...times) - Math.min(...times);
    assert.ok(spanMs >= 5 * 50 - 10, `6 calls at 20/s took ${spanMs} ms`);
  });

  it('spreads what Port says is left until the reset, and waits for the reset once it is spent', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 0, logger: capturingLogger().logger });
    const startedAt = Date.now();
    await callThrough(budget, 'log', ok({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1' }));
    const next = await callThrough(budget, 'log');
    assert.ok(next - startedAt >= 950, `the next call went after ${next - startedAt} ms, before the reset`);
  });

  it('holds every call after a 429 until Retry-After, or the reset it announced', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 0, logger: capturingLogger().logger });
    let startedAt = Date.now();
    await callThrough(budget, 'final', { status: 429, headers: { 'retry-after': '0.6' } });
    let next = await callThrough(budget, 'final');
    assert.ok(next - startedAt >= 590, `went after ${next - startedAt} ms`);
    startedAt = Date.now();
    await callThrough(budget, 'final', { status: 429, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1' } });
    next = await callThrough(budget, 'final');
    assert.ok(next - startedAt >= 950, `went after ${next - startedAt} ms`);
  });

  it('never sends again at once after a 429 whose Retry-After is 0', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 0, logger: capturingLogger().logger });
    const startedAt = Date.now();
    await callThrough(budget, 'final', { status: 429, headers: { 'retry-after': '0' } });
    const next = await callThrough(budget, 'final');
    assert.ok(next - startedAt >= 950, `went after ${next - startedAt} ms`);
  });

  it('lets the waiting calls go most important first: control, final statuses, responses, lines', async () => {
    const budget = createPortBudget({ maxCallsPerSecond: 0, logger: capturingLogger().logger });
    await callThrough(budget, 'control', { status: 429, headers: { 'retry-after': '0.3' } });
    const order: CallPriority[] = [];
    await Promise.all(
      (['log', 'response', 'log', 'final', 'control', 'response', 'final'] as const).map(async (priority) => {
        await callThrough(budget, priority);
        order.push(priority);
      }),
    );
    assert.deepEqual(order, ['control', 'final', 'final', 'response', 'response', 'log', 'log']);
  });

  it('says once at warn that calls wait for the budget, and once at info when they stop', async () => {
    const { logger, lines } = capturingLogger();
    const budget = createPortBudget({ maxCallsPerSecond: 4, logger });
    assert.equal(budget.isShort(), false);
    const calls = Array.from({ length: 8 }, () => callThrough(budget, 'log'));
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    assert.equal(budget.isShort(), true);
    const relieved = budget.relieved();
    await Promise.all(calls);
    await relieved;
    assert.equal(budget.isShort(), false);
    assert.deepEqual(
      lines.filter((line) => line.level === 'warn' || line.level === 'info').map((line) => line.msg),
      ["waiting for Port's API budget: Port calls are queued, final statuses first", "Port's API budget allows calls again: no call is waiting"],
    );
  });
});
