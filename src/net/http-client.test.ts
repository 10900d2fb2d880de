import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerRecord, headersAsSent } from './http-client.js';

describe('headersAsSent', () => {
  it('keeps the names as the service spelled them', () => {
    assert.deepEqual(headersAsSent(['Location', 'http://x', 'X-Request-Id', '7', 'content-type', 'text/plain']), {
      Location: 'http://x',
      'X-Request-Id': '7',
      'content-type': 'text/plain',
    });
  });

  it('joins a repeated name, in any case, under its first spelling', () => {
    assert.deepEqual(headersAsSent(['Set-Cookie', 'a=1', 'X-Mixed', 'a', 'set-cookie', 'b=2', 'x-mixed', 'b']), { 'Set-Cookie': 'a=1, b=2', 'X-Mixed': 'a, b' });
  });

  it('ignores a name without a value', () => {
    assert.deepEqual(headersAsSent(['Location']), {});
  });
});

describe('headerRecord', () => {
  it('lower-cases names unless told to keep them, joins lists and leaves out empty values', () => {
    const given = { Location: 'http://x', 'Set-Cookie': ['a', 'b'], Gone: null, Count: 3 };
    assert.deepEqual(headerRecord(given), { location: 'http://x', 'set-cookie': 'a, b', count: '3' });
    assert.deepEqual(headerRecord(given, 'as-given'), { Location: 'http://x', 'Set-Cookie': 'a, b', Count: '3' });
    assert.deepEqual(headerRecord('not headers'), {});
  });
});
