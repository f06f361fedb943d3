import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';
import { useCpuBackend } from './cpu-backend.js';

describe('Inception-V3 forward pass (75x75, cpu)', function () {
  this.timeout(120_000);
  useCpuBackend();

  let model: tfl.LayersModel;
  before(() => {
    model = buildInceptionV3({ imageSize: 75, numClasses: 10, auxLogits: true, seed: 7 });
  });
  after(() => {
    const held = tf.memory().numTensors;
    model.dispose();
    assert.equal(held - tf.memory().numTensors, model.weights.length, 'dispose() frees every weight');
  });

  it('maps a batch of 2 images to 2 rows of logits per output, whose softmax is a distribution', async () => {
    const images = tf.randomUniform([2, 75, 75, 3], -1, 1, 'float32', 3);
    const outputs = model.predict(images) as tf.Tensor[];
    try {
      assert.deepEqual(outputs.map((o) => o.shape), [[2, 10], [2, 10]]);
      for (const output of outputs) {
        const rows = (await output.array()) as number[][];
        const probabilities = tf.tidy(() => tf.softmax(output).arraySync() as number[][]);
        for (const row of rows) assert.ok(row.some((logit) => logit < 0) && row.some((logit) => logit > 0), `logits, not probabilities: ${row}`);
        for (const row of probabilities) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `softmax row sums to 1: ${row}`);
        assert.notDeepEqual(rows[0], rows[1], 'different images, different predictions');
      }
    } finally {
      tf.dispose([images, ...outputs]);
    }
  });

  it('is a pure function of its input in inference mode, and leaves no tensor behind', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const images = tf.randomUniform([2, 75, 75, 3], -1, 1, 'float32', 4);
    const first = model.predict(images) as tf.Tensor[];
    const again = model.predict(images) as tf.Tensor[];
    try {
      for (let i = 0; i < first.length; i++) assert.deepEqual(await first[i]!.data(), await again[i]!.data());
    } finally {
      tf.dispose([images, ...first, ...again]);
    }
    assert.equal(tf.memory().numTensors, tensorsBefore);
  });
});
