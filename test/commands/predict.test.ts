import assert from 'node:assert/strict';
import { topClasses } from '../../src/commands/predict.js';

describe('hpctrain predict: topClasses', () => {
  it('takes the k most probable classes, most probable first, the lower index first among equals', () => {
    const labels = ['a', 'b', 'c', 'd', 'e'];
    assert.deepEqual(topClasses(Float32Array.of(0.1, 0.3, 0.1, 0.4, 0.1), 3, labels), [
      { index: 3, label: 'd', probability: Float32Array.of(0.4)[0] },
      { index: 1, label: 'b', probability: Float32Array.of(0.3)[0] },
      { index: 0, label: 'a', probability: Float32Array.of(0.1)[0] },
    ]);
    assert.deepEqual(topClasses([0.2, 0.2, 0.2, 0.2, 0.2], 5, labels).map((t) => t.index), [0, 1, 2, 3, 4]);
  });
});
