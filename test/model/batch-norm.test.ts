import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { ScalelessBatchNorm } from '../../src/model/batch-norm.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

const close = (actual: number, expected: number, tolerance = 1e-4) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not ${expected}`);

describe('ScalelessBatchNorm', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('normalizes with batch statistics in training, moves the averages by 1 - momentum, and trains beta', () => {
    const layer = new ScalelessBatchNorm({ name: 'bn_test', momentum: 0.99, epsilon: 1e-3, relu: false });
    const xs = randomFloats(seededRandom(5), 4 * 3 * 3 * 2).map((v, i) => v * 3 + (i % 2) * 10);
    const x = tf.tensor4d(xs, [4, 3, 3, 2]);
    layer.apply(x, { training: false }); // builds the weights
    const [beta, movingMean, movingVariance] = layer.weights;
    assert.deepEqual(layer.weights.map((w) => [w.originalName, w.trainable]), [['bn_test/beta', true], ['bn_test/moving_mean', false], ['bn_test/moving_variance', false]]);
    beta!.write(tf.tensor1d([0.5, -0.5]));
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    const normalized = tf.moments(y, [0, 1, 2]);
    close(normalized.mean.dataSync()[0]!, 0.5);
    close(normalized.mean.dataSync()[1]!, -0.5);
    close(normalized.variance.dataSync()[1]!, 1, 1e-3);

    const batch = tf.moments(x, [0, 1, 2]);
    close(movingMean!.read().dataSync()[1]!, 0.01 * batch.mean.dataSync()[1]!);
    close(movingVariance!.read().dataSync()[1]!, 0.99 + 0.01 * batch.variance.dataSync()[1]!, 1e-3);

    // d/dbeta of sum(y * [1, 2]) is the count of values per channel times the weight: 36 and 72.
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, tf.tensor1d([1, 2]))),
      [beta!.read() as tf.Variable],
    );
    assert.deepEqual([...Object.values(grads)[0]!.dataSync()], [36, 72]);
  });

  it('has the input gradient of batch normalization written out as tfjs would compute it from the ops', () => {
    const random = seededRandom(9);
    const x = tf.tensor4d(randomFloats(random, 3 * 4 * 5 * 6).map((v, i) => v * (1 + (i % 6)) + (i % 6)), [3, 4, 5, 6]);
    const weights = tf.tensor4d(randomFloats(random, 3 * 4 * 5 * 6), [3, 4, 5, 6]);
    const layer = new ScalelessBatchNorm({ name: 'bn_grad', momentum: 0.99, epsilon: 1e-3, relu: false });
    layer.apply(x, { training: false });
    const ours = tf.grad((input) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, weights)))(x);
    const reference = tf.grad((input) => {
      const { mean, variance } = tf.moments(input, [0, 1, 2]);
      return tf.sum(tf.mul(tf.div(tf.sub(input, mean), tf.sqrt(tf.add(variance, 1e-3))), weights));
    })(x);
    const a = ours.dataSync();
    const b = reference.dataSync();
    let worst = 0;
    for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
    assert.ok(Math.max(...b.map(Math.abs)) > 0.1, 'the reference gradient is not trivially zero');
  });
});
