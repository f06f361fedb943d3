// The SIMD additions of the allreduce give, bit for bit, what float32 arithmetic gives, at every
// length around the chunk and vector boundaries.
import assert from 'node:assert/strict';
import { addDivideInto, addInto } from '../../src/comm/sum-kernels.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

describe('sum kernels', () => {
  for (const length of [0, 1, 3, 4, 5, 16_383, 16_384, 16_385, 100_003]) {
    it(`${length} values: addInto and addDivideInto round as Math.fround does`, () => {
      const random = seededRandom(length);
      const from = randomFloats(random, length);
      const into = randomFloats(random, length).map((v) => v * 1000);
      const sum = into.map((v, i) => Math.fround(v + from[i]!));
      const added = into.slice();
      addInto(added, from);
      assert.deepEqual(added, sum);
      const mean = sum.map((v) => Math.fround(v / 3));
      const divided = into.slice();
      const also = new Float32Array(length);
      addDivideInto(divided, from, 3, also);
      assert.deepEqual(divided, mean);
      assert.deepEqual(also, mean);
    });
  }

  it('refuses arrays of different lengths', () => {
    assert.throws(() => addInto(new Float32Array(4), new Float32Array(5)), /lengths differ: 4, 5/);
  });
});
