import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHostGuard } from './host-guard.js';

async function enterAndLeave(guard: ReturnType<typeof createHostGuard>, host: string, succeeded: boolean): Promise<string> {
  const entry = await guard.enter(host);
  if (entry.kind === 'open') return 'open';
  entry.leave(succeeded);
  return 'entered';
}

describe('createHostGuard', () => {
  it('limits requests per host, not across hosts', async () => {
    const guard = createHostGuard({ perHostLimit: 1 });
    const first = await guard.enter('slow:80');
    let isSecondIn = false;
    const second = guard.enter('slow:80').then((entry) => {
      isSecondIn = true;
      return entry;
    });
    assert.equal((await guard.enter('fast:80')).kind, 'entered', 'another host is not held back');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(isSecondIn, false, 'the same host waits');
    if (first.kind === 'entered') first.leave(true);
    assert.equal((await second).kind, 'entered');
  });

  it('opens after consecutive failures, probes after the cool-down, and closes on success', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 3, initialCooldownMs: 1000, now: () => nowMs });
    for (let attempt = 0; attempt < 3; attempt += 1) assert.equal(await enterAndLeave(guard, 'down:80', false), 'entered');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open');
    assert.equal(await enterAndLeave(guard, 'up:80', true), 'entered', 'other hosts are unaffected');
    nowMs = 1000;
    const probe = await guard.enter('down:80');
    assert.equal(probe.kind, 'entered', 'one probe after the cool-down');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'only one probe at a time');
    if (probe.kind === 'entered') probe.leave(false);
    nowMs = 2500;
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'the cool-down doubled after a failed probe');
    nowMs = 3000;
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'entered');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'entered', 'closed again after a successful probe');
  });

  it('resets the failure count on a success', async () => {
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 2 });
    await enterAndLeave(guard, 'flaky:80', false);
    await enterAndLeave(guard, 'flaky:80', true);
    await enterAndLeave(guard, 'flaky:80', false);
    assert.equal(await enterAndLeave(guard, 'flaky:80', true), 'entered');
  });
});
