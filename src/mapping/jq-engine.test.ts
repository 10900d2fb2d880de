/**
 * The resident jq process must survive any message: jq 1.6 exits at an input line nested too
 * deeply or holding a lone high surrogate escape, and every evaluation in flight — other
 * messages' too — would fail with it (issue 7, hostile input).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { JQ_MAX_INPUT_DEPTH, createJqCompiler } from './jq-engine.js';

function nestedArrays(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let level = 0; level < levels; level++) value = [value];
  return value;
}

function nestedObjects(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let level = 0; level < levels; level++) value = { a: value };
  return value;
}

async function settle(promises: Promise<unknown>[]): Promise<(string | { value: unknown })[]> {
  const results = await Promise.allSettled(promises);
  return results.map((result) => (result.status === 'fulfilled' ? { value: result.value } : String((result.reason as Error).message)));
}

describe('the jq engine with hostile input', () => {
  const compiler = createJqCompiler({ environment: {} });
  // Every expression before the first evaluation, as the agent compiles its mappings at start.
  const identity = compiler.compile('.');
  const first = compiler.compile('.a');
  const keys = compiler.compile('keys');
  after(() => compiler.close());

  it('refuses an input nested deeper than jq reads, and evaluates the others of the same batch and the next', async () => {
    const tooDeep = nestedArrays(JQ_MAX_INPUT_DEPTH + 1);
    const tooDeepObjects = nestedObjects(Math.ceil(JQ_MAX_INPUT_DEPTH / 2) + 1);
    const results = await settle([first.evaluate({ a: 1 }), identity.evaluate(tooDeep), identity.evaluate(tooDeepObjects), first.evaluate({ a: 2 })]);
    assert.deepEqual(results[0], { value: 1 });
    assert.match(String(results[1]), /nested too deeply for jq/);
    assert.match(String(results[2]), /nested too deeply for jq/);
    assert.deepEqual(results[3], { value: 2 });
    assert.deepEqual(await first.evaluate({ a: 3 }), 3, 'jq is still running');
  });

  it('evaluates inputs right at the limit', async () => {
    assert.deepEqual(await identity.evaluate(nestedArrays(JQ_MAX_INPUT_DEPTH, 'leaf')), nestedArrays(JQ_MAX_INPUT_DEPTH, 'leaf'));
    const objects = nestedObjects(Math.floor(JQ_MAX_INPUT_DEPTH / 2), 'leaf');
    assert.deepEqual(await identity.evaluate(objects), objects);
  });

  it('turns lone surrogates into U+FFFD instead of stopping jq, in values and keys', async () => {
    const results = await settle([
      first.evaluate({ a: 'x\ud800y' }),
      keys.evaluate({ 'k\ud800': 1 }),
      first.evaluate({ a: '\udc00\ud83d\ude00' }),
      first.evaluate({ a: '\\ud800 stays as text' }),
      first.evaluate({ a: 'after' }),
    ]);
    assert.deepEqual(results, [{ value: 'x\ufffdy' }, { value: ['k\ufffd'] }, { value: '\ufffd\ud83d\ude00' }, { value: '\\ud800 stays as text' }, { value: 'after' }]);
  });
});
