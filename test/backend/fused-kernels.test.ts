// The fused batch norm + ReLU kernels against the same arithmetic composed from tf ops, on both
// backends that run them, through the layer and through tf.grads; and the wasm Identity that
// shares memory instead of copying it.
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { BATCH_NORM_RELU, hasFusedKernels } from '../../src/backend/fused-kernels.js';
import { tf } from '../../src/backend/tf.js';
import { registerWasmGradKernels } from '../../src/backend/wasm-grad-kernels.js';
import { ScalelessBatchNorm } from '../../src/model/batch-norm.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

function composed(x: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  return tf.relu(tf.add(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), beta));
}

function fused(x: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  return (tf.engine().runKernel(BATCH_NORM_RELU, { x, beta }, { epsilon }) as unknown as tf.Tensor[])[0]!;
}

function relativeError(actual: tf.Tensor, expected: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]! / Math.max(tf.max(tf.abs(expected)).dataSync()[0]!, 1e-12));
}

describe('fused batch norm + ReLU kernels', () => {
  before(() => registerWasmGradKernels());

  for (const backend of ['wasm', 'cpu']) {
    it(`match the composed ops in value and in both gradients on ${backend}, over 20 random shapes`, async () => {
      await tf.setBackend(backend);
      assert.equal(hasFusedKernels(), true);
      const random = seededRandom(backend === 'wasm' ? 11 : 12);
      for (let i = 0; i < 20; i++) {
        const shape = i % 4 === 3
          ? [1 + Math.floor(random() * 30), 1 + Math.floor(random() * 20)]
          : [1 + Math.floor(random() * 4), 1 + Math.floor(random() * 7), 1 + Math.floor(random() * 7), 1 + Math.floor(random() * 40)];
        const channels = shape.at(-1)!;
        const size = shape.reduce((a, b) => a * b, 1);
        if (size / channels < 2) continue; // one value per channel: variance 0, nothing to compare
        tf.tidy(() => {
          // Channels with their own offsets and scales, and betas that put values on both sides of 0.
          const x = tf.tensor(randomFloats(random, size).map((v, j) => v * (1 + (j % channels)) + (j % channels) - 3), shape);
          const beta = tf.tensor1d(randomFloats(random, channels).map((v) => v - 0.5));
          const weights = tf.tensor(randomFloats(random, size).map((v) => v - 0.5), shape);
          const loss = (f: typeof fused) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b, 1e-3), weights));
          const [dxFused, dBetaFused] = tf.grads(loss(fused))([x, beta]);
          const [dxComposed, dBetaComposed] = tf.grads(loss(composed))([x, beta]);
          const label = `shape [${shape.join(', ')}]`;
          assert.ok(relativeError(fused(x, beta, 1e-3), composed(x, beta, 1e-3)) < 1e-5, `${label}: y`);
          assert.ok(relativeError(dxFused!, dxComposed!) < 1e-4, `${label}: dx ${relativeError(dxFused!, dxComposed!)}`);
          assert.ok(relativeError(dBetaFused!, dBetaComposed!) < 1e-5, `${label}: dbeta`);
        });
      }
    });
  }

  it('return the biased batch mean and variance, and the layer moves its averages by them', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d([[1, 10], [3, 10], [5, 16]]);
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_RELU, { x, beta: tf.zeros([2]) }, { epsilon: 0 }) as unknown as tf.Tensor[];
    assert.deepEqual([...mean!.dataSync()], [3, 12]);
    assert.deepEqual([...variance!.dataSync()].map((v) => +v.toFixed(5)), [8 / 3, 8].map((v) => +v.toFixed(5)));
    assert.equal(y!.dataSync()[0], 0, 'the ReLU cuts the lowest value of each channel');

    const layer = new ScalelessBatchNorm({ name: 'bn_fused', momentum: 0.9, epsilon: 1e-3, relu: true });
    layer.apply(x, { training: false });
    tf.tidy(() => {
      layer.apply(x, { training: true });
    });
    const [, movingMean, movingVariance] = layer.getWeights();
    assert.deepEqual([...movingMean!.dataSync()].map((v) => +v.toFixed(5)), [0.3, 1.2]);
    assert.deepEqual([...movingVariance!.dataSync()].map((v) => +v.toFixed(5)), [0.9 + 0.1 * 8 / 3, 0.9 + 0.8].map((v) => +v.toFixed(5)));
    tf.dispose([x, y!, mean!, variance!]);
    layer.dispose();
  });

  it('leave no tensor behind after a training step of the layer', async () => {
    await tf.setBackend('wasm');
    const layer = new ScalelessBatchNorm({ name: 'bn_leak', momentum: 0.99, epsilon: 1e-3, relu: true });
    const x = tf.randomNormal([2, 3, 3, 5], 0, 1, 'float32', 3);
    layer.apply(x, { training: false });
    const beta = layer.trainableWeights[0]!.read() as tf.Variable;
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(layer.apply(x, { training: true }) as tf.Tensor), [beta]);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    step();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    layer.dispose();
  });
});

describe('wasm Identity', () => {
  before(() => registerWasmGradKernels());

  it('shares memory with its input, and either survives the other being freed', async () => {
    await tf.setBackend('wasm');
    const buffersBefore = tf.memory().numDataBuffers;
    const x = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(x);
    assert.equal(tf.memory().numDataBuffers - buffersBefore, 1, 'one buffer for both');
    x.dispose();
    assert.deepEqual([...copy.dataSync()], [1, 2, 3]);
    const again = tf.clone(copy);
    copy.dispose();
    assert.deepEqual([...again.dataSync()], [1, 2, 3]);
    again.dispose();
    assert.equal(tf.memory().numDataBuffers, buffersBefore);
  });
});
