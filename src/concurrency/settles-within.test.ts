import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { settlesWithin } from './settles-within.js';

describe('settlesWithin', () => {
  it('says true for work done in time, rejected or not', async () => {
    assert.equal(await settlesWithin(Promise.resolve('done'), 1_000), true);
    assert.equal(await settlesWithin(Promise.reject(new Error('failed')), 1_000), true);
  });

  it('says false once the grace period is over', async () => {
    const startedAt = Date.now();
    assert.equal(await settlesWithin(new Promise(() => undefined), 50), false);
    assert.ok(Date.now() - startedAt >= 45);
  });
});
