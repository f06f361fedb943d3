// Where the parameter servers' variables go: by size (greedy, largest first) or round-robin, whole
// variables, every value exactly once, and the trainable part first in every shard.
import assert from 'node:assert/strict';
import { gatherShard, placeVariables, scatterShard, shardRuns, shardsOf } from '../../src/comm/placement.js';

describe('placing variables on parameter servers', () => {
  it('by size balances the load: the largest variables spread first', () => {
    const owner = placeVariables([10, 100, 50, 50, 1], 2, 'size');
    // 100 -> 0; 50 -> 1; 50 -> 1 (50 < 100); 10 -> 0 (a tie goes to the first); 1 -> 1 (101 < 110).
    assert.deepEqual(owner, [0, 0, 1, 1, 1]);
    const load = [0, 0];
    [10, 100, 50, 50, 1].forEach((length, i) => { load[owner[i]!]! += length; });
    assert.deepEqual(load, [110, 101]);
  });

  it('round-robin follows the model order', () => {
    assert.deepEqual(placeVariables([5, 5, 5, 5, 5], 3, 'round-robin'), [0, 1, 2, 0, 1]);
  });

  it('shards cover every value once, trainable values first, and gather/scatter round-trip', () => {
    const lengths = [4, 3, 2, 6, 1, 1];
    const trainable = 4 + 3 + 2 + 6;
    const total = trainable + 2;
    for (const placement of ['size', 'round-robin'] as const) {
      for (const servers of [1, 2, 3, 5]) {
        const shards = shardsOf(lengths, trainable, servers, placement);
        const seen = new Array<number>(total).fill(0);
        for (const shard of shards) {
          let inShard = 0;
          for (const { start, length } of shard.ranges) {
            for (let i = start; i < start + length; i++) seen[i]!++;
            // A range never straddles the boundary, and trainable ranges come first.
            assert.ok(start + length <= trainable || start >= trainable, `${placement}/${servers}: a range straddles the trainable boundary`);
            if (start < trainable) assert.ok(inShard < shard.trainableLength || length === 0);
            inShard += length;
          }
          assert.equal(inShard, shard.length);
        }
        assert.deepEqual(seen, new Array<number>(total).fill(1), `${placement}/${servers}`);
        assert.equal(shards.reduce((sum, s) => sum + s.trainableLength, 0), trainable);
        const flat = Float32Array.from({ length: total }, (_, i) => i + 1);
        const back = new Float32Array(total);
        for (const shard of shards) {
          const values = new Float32Array(shard.length);
          gatherShard(flat, shard, values);
          scatterShard(values, shard, back);
          const trainablePart = new Float32Array(shard.trainableLength);
          gatherShard(flat.subarray(0, trainable), shard, trainablePart);
          assert.deepEqual(trainablePart, values.subarray(0, shard.trainableLength));
        }
        assert.deepEqual(back, flat);
      }
    }
  });

  it('names the runs of the flat vector behind any stretch of a shard', () => {
    const shard = { ranges: [{ start: 10, length: 5 }, { start: 30, length: 3 }, { start: 40, length: 4 }], length: 12, trainableLength: 8 };
    assert.deepEqual(shardRuns(shard, 0, 12), [{ flat: 10, at: 0, length: 5 }, { flat: 30, at: 5, length: 3 }, { flat: 40, at: 8, length: 4 }]);
    assert.deepEqual(shardRuns(shard, 3, 9), [{ flat: 13, at: 3, length: 2 }, { flat: 30, at: 5, length: 3 }, { flat: 40, at: 8, length: 1 }]);
    assert.deepEqual(shardRuns(shard, 6, 7), [{ flat: 31, at: 6, length: 1 }]);
    assert.deepEqual(shardRuns(shard, 12, 12), []);
  });
});
