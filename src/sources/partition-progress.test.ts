import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOffsetCommitter, createPartitionProgress } from './partition-progress.js';

describe('createPartitionProgress', () => {
  it('never lets the commit pass an unfinished message', () => {
    const progress = createPartitionProgress();
    for (const offset of ['10', '11', '12', '13']) progress.dispatched(offset);
    assert.equal(progress.committable(), undefined);
    progress.finished('12');
    progress.finished('11');
    assert.equal(progress.committable(), undefined, '10 is still in flight');
    progress.finished('10');
    assert.equal(progress.committable(), '13');
    assert.equal(progress.lastContiguous(), '12');
    progress.finished('13');
    assert.equal(progress.committable(), '14');
    assert.equal(progress.lastContiguous(), '13');
  });

  it('handles offsets with gaps (compacted topics) and past 2^53', () => {
    const progress = createPartitionProgress();
    progress.dispatched('9007199254740993');
    progress.dispatched('9007199254740999');
    progress.finished('9007199254740999');
    progress.finished('9007199254740993');
    assert.equal(progress.committable(), '9007199254741000');
  });

  it('keeps its answers across the trimming of a long history', () => {
    const progress = createPartitionProgress();
    assert.equal(progress.nextToCommit(), undefined);
    for (let offset = 0; offset < 10_000; offset += 1) progress.dispatched(String(offset));
    // Everything but 7,500 finishes, in reverse order, then in order.
    for (let offset = 9_999; offset >= 5_000; offset -= 1) if (offset !== 7_500) progress.finished(String(offset));
    for (let offset = 0; offset < 5_000; offset += 1) progress.finished(String(offset));
    assert.equal(progress.committable(), '7500');
    assert.equal(progress.nextToCommit(), '7500');
    assert.equal(progress.lastContiguous(), '7499');
    progress.finished('7500');
    assert.equal(progress.committable(), '10000');
    for (let offset = 10_000; offset < 12_000; offset += 1) progress.dispatched(String(offset));
    assert.equal(progress.committable(), '10000', 'the next unfinished offset');
    for (let offset = 10_000; offset < 12_000; offset += 1) progress.finished(String(offset));
    assert.equal(progress.committable(), '12000');
    assert.equal(progress.lastContiguous(), '11999');
  });
});

describe('createOffsetCommitter', () => {
  it('collapses requests made during a commit into one later commit', async () => {
    const commits: string[] = [];
    let release: () => void = () => undefined;
    const committer = createOffsetCommitter(async (offset) => {
      commits.push(offset);
      if (commits.length === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    committer.request('5');
    committer.request('6');
    committer.request('8');
    committer.request('7');
    release();
    await committer.flush();
    assert.deepEqual(commits, ['5', '8']);
  });

  it('reports a failed commit at flush', async () => {
    const committer = createOffsetCommitter(async () => {
      throw new Error('The coordinator is not aware of this member');
    });
    committer.request('1');
    await assert.rejects(committer.flush(), /not aware of this member/);
  });
});
