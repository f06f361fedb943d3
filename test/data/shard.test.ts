import assert from 'node:assert/strict';
import { epochOrder, rankRange, shardExamples } from '../../src/data/shard.js';
import { createRandom } from '../../src/data/random.js';

const CASES: [count: number, size: number][] = [
  [1, 1],
  [10, 3],
  [100, 4],
  [1000, 7],
  [5, 8],
  [1281, 16],
];

function allRanks(count: number, size: number, seed: number, epoch: number, mode: 'train' | 'eval'): Uint32Array[] {
  return Array.from({ length: size }, (_, rank) => shardExamples({ count, rank, size, seed, epoch, mode }));
}

describe('data/shard', () => {
  it('gives each rank a disjoint floor(n/size) examples in training, reshuffled every epoch', () => {
    for (const [count, size] of CASES) {
      for (const epoch of [0, 1, 5]) {
        const shards = allRanks(count, size, 42, epoch, 'train');
        const seen = new Set<number>();
        for (const shard of shards) {
          assert.equal(shard.length, Math.floor(count / size), `n=${count} size=${size}`);
          for (const index of shard) {
            assert.ok(index < count);
            assert.ok(!seen.has(index), `example ${index} on two ranks (n=${count} size=${size} epoch=${epoch})`);
            seen.add(index);
          }
        }
        // Only the remainder is left out, and it is a different remainder in another epoch.
        assert.equal(seen.size, count - (count % size));
      }
    }
  });

  it('leaves out different examples in different epochs, so none is skipped for good', () => {
    const count = 103;
    const size = 4;
    const everSeen = new Set<number>();
    for (let epoch = 0; epoch < 20; epoch++) for (const shard of allRanks(count, size, 7, epoch, 'train')) shard.forEach((i) => everSeen.add(i));
    assert.equal(everSeen.size, count);
  });

  it('covers every example exactly once in evaluation, in one fixed order interleaved over the ranks', () => {
    for (const [count, size] of CASES) {
      const shards = allRanks(count, size, 42, 3, 'eval');
      const all = shards.flatMap((s) => [...s]).sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: count }, (_, i) => i), `n=${count} size=${size}`);
      const lengths = shards.map((s) => s.length);
      assert.ok(Math.max(...lengths) - Math.min(...lengths) <= 1);
      assert.deepEqual(allRanks(count, size, 7, 0, 'eval'), shards, 'the same for every seed and epoch');
      // Interleaved: the ranks' i-th examples are neighbours in the one order, so rank 0 of 1 reads them in turn.
      const [whole] = allRanks(count, 1, 0, 0, 'eval');
      shards.forEach((shard, rank) => shard.forEach((index, i) => assert.equal(index, whole![rank + i * size], `n=${count} size=${size} rank ${rank}`)));
    }
    // Class-sorted files (10 classes of 30): each rank's first batch of 16 samples most classes, not one or two.
    for (const rank of [0, 1]) {
      const firstBatch = shardExamples({ count: 300, rank, size: 2, seed: 1, epoch: 0, mode: 'eval' }).slice(0, 16);
      const classes = new Set([...firstBatch].map((index) => Math.floor(index / 30)));
      assert.ok(classes.size >= 6, `rank ${rank}'s first batch holds classes ${[...classes]}`);
    }
  });

  it('is identical for the same seed and epoch, and differs between epochs and seeds', () => {
    const same = (a: Uint32Array, b: Uint32Array) => a.length === b.length && a.every((v, i) => v === b[i]);
    assert.ok(same(epochOrder(1000, 9, 2), epochOrder(1000, 9, 2)));
    assert.ok(!same(epochOrder(1000, 9, 2), epochOrder(1000, 9, 3)));
    assert.ok(!same(epochOrder(1000, 9, 2), epochOrder(1000, 10, 2)));
    assert.ok(!same(epochOrder(1000, 2 ** 32 - 1, 0), epochOrder(1000, 2 ** 32 - 2, 0)));
    assert.deepEqual([...epochOrder(1000, 9, 2)].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
    // A rank's shard changes between epochs: reshuffled, not a fixed slice.
    assert.ok(!same(shardExamples({ count: 1000, rank: 1, size: 4, seed: 9, epoch: 0, mode: 'train' }), shardExamples({ count: 1000, rank: 1, size: 4, seed: 9, epoch: 1, mode: 'train' })));
  });

  it('shuffles without an obvious bias', () => {
    // Where example 0 lands over many epochs: each quarter of the order about equally often.
    const quarters = [0, 0, 0, 0];
    for (let epoch = 0; epoch < 4000; epoch++) quarters[Math.floor(epochOrder(100, 1, epoch).indexOf(0) / 25)]!++;
    for (const q of quarters) assert.ok(q > 850 && q < 1150, `quarters ${quarters}`);
  });

  it('splits ranges as documented', () => {
    assert.deepEqual(rankRange(10, 2, 3, 'train'), { start: 6, end: 9 });
    assert.deepEqual(rankRange(10, 0, 3, 'eval'), { start: 0, end: 4 });
    assert.deepEqual(rankRange(10, 2, 3, 'eval'), { start: 7, end: 10 });
  });

  it('draws different streams for different keys', () => {
    const first = (...keys: number[]) => createRandom(...keys)();
    const values = new Set([first(1), first(2), first(1, 0), first(1, 1), first(0, 1), first(2 ** 32), first(1, 0, 0)]);
    assert.equal(values.size, 7);
    assert.equal(first(5, 6, 7), first(5, 6, 7));
  });
});
