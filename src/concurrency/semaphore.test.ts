import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSemaphore } from './semaphore.js';

describe('createSemaphore', () => {
  it('lets at most the limit hold a slot and hands slots over in order', async () => {
    const semaphore = createSemaphore(2);
    const first = await semaphore.acquire();
    const second = await semaphore.acquire();
    const order: number[] = [];
    const third = semaphore.acquire().then((release) => {
      order.push(3);
      return release;
    });
    const fourth = semaphore.acquire().then((release) => {
      order.push(4);
      return release;
    });
    assert.equal(semaphore.active, 2);
    assert.equal(semaphore.waiting, 2);
    first();
    first();
    (await third)();
    second();
    (await fourth)();
    assert.deepEqual(order, [3, 4]);
    assert.equal(semaphore.active, 0);
    assert.equal(semaphore.waiting, 0);
  });

  it('rejects a limit below 1', () => {
    assert.throws(() => createSemaphore(0), /whole number of 1 or more/);
  });
});
