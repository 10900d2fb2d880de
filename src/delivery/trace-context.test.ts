import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTraceparent, pooledRandomBytes, traceContextFor } from './trace-context.js';

const INCOMING = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceContextFor', () => {
  it('continues an incoming trace with a new span of its own', () => {
    const context = traceContextFor(INCOMING);
    assert.equal(context.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.match(context.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    assert.notEqual(context.traceparent, INCOMING);
  });

  it('keeps the flags of the incoming trace (not sampled stays not sampled)', () => {
    assert.match(traceContextFor('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00').traceparent, /-00$/);
  });

  it('starts a new sampled trace without an incoming one', () => {
    const context = traceContextFor(undefined);
    assert.match(context.traceId, /^[0-9a-f]{32}$/);
    assert.equal(context.traceparent.split('-')[1], context.traceId);
    assert.match(context.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.notEqual(traceContextFor(undefined).traceId, context.traceId);
  });

  for (const invalid of [
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
  ]) {
    it(`starts a new trace for the invalid traceparent ${invalid}`, () => {
      assert.equal(parseTraceparent(invalid), undefined);
      assert.notEqual(traceContextFor(invalid).traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    });
  }

  it('accepts a future version with more fields, and upper case', () => {
    assert.deepEqual(parseTraceparent('01-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01-more'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
  });
});

describe('pooledRandomBytes', () => {
  it('never hands out the same bytes twice, across refills of the pool', () => {
    const seen = new Set<string>();
    for (let index = 0; index < 2_000; index += 1) seen.add(pooledRandomBytes(24).toString('hex'));
    assert.equal(seen.size, 2_000);
    assert.equal(pooledRandomBytes(5_000).length, 5_000, 'more than a pool at once');
  });
});
