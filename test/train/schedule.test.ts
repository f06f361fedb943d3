import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { clipScale, newRmsPropState, RECIPE_RMSPROP, rmspropUpdate, sumOfSquares } from '../../src/train/rmsprop.js';
import { learningRateAt, scaledLearningRate } from '../../src/train/schedule.js';
import { seededRandom } from '../helpers/random.js';

describe('the recipe\'s learning rate, clipping and RMSProp', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('scales 0.045 with the global batch, warms up linearly, then decays by 0.94 every 2 epochs', () => {
    assert.equal(scaledLearningRate(1600), 0.045);
    const schedule = { peakRate: 0.09, warmupEpochs: 2, decayRate: 0.94, decayEpochs: 2, stepsPerEpoch: 10 };
    assert.equal(learningRateAt(0, schedule), 0.09 / 20);
    assert.equal(learningRateAt(9, schedule), 0.09 / 2);
    assert.equal(learningRateAt(19, schedule), 0.09);
    // Epochs 2 and 3: the first decay (the warm-up's epochs count towards it).
    assert.equal(learningRateAt(20, schedule), 0.09 * 0.94);
    assert.equal(learningRateAt(39, schedule), 0.09 * 0.94);
    assert.equal(learningRateAt(40, schedule), 0.09 * 0.94 ** 2);
    assert.equal(learningRateAt(0, { ...schedule, warmupEpochs: 0 }), 0.09);
  });

  it('clips by global norm only above the limit: the factor tf.clip_by_global_norm applies', () => {
    const gradients = Float32Array.of(3, 0, 0, 4, 100);
    const norm = Math.sqrt(sumOfSquares(gradients, 0, 4));
    assert.equal(norm, 5, 'the norm covers [start, end) only');
    assert.equal(clipScale(norm, 10), 1);
    assert.equal(clipScale(norm, 2), 2 / 5);
    assert.equal(clipScale(norm, 0), 1, 'a limit of 0 does not clip');
    assert.equal(clipScale(Number.NaN, 2), 1, 'a NaN norm is left for the loss check to report');
  });

  it('updates as tf.train.rmsprop(lr, 0.9, 0.9, 1.0) does, step after step, with changing rates and a clipping factor', () => {
    const start = [0.5, -1.25, 2, 0.001];
    const x = tf.variable(tf.tensor1d(start));
    const optimizer = tf.train.rmsprop(0.1, 0.9, 0.9, 1.0);
    const params = Float32Array.from(start);
    const state = newRmsPropState(start.length);
    const random = seededRandom(9);
    for (let step = 0; step < 8; step++) {
      const rate = 0.01 * (step + 1);
      const scale = step % 3 === 0 ? 0.5 : 1;
      const gradient = Float32Array.from(start, () => random() * 4 - 2);
      (optimizer as unknown as { learningRate: number }).learningRate = rate;
      optimizer.applyGradients({ [x.name]: tf.mul(tf.tensor1d(gradient), scale) as tf.Tensor1D });
      rmspropUpdate(params, gradient, state, RECIPE_RMSPROP, rate, scale);
    }
    const expected = x.dataSync();
    params.forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) < 1e-6, `value ${i}: ${value} against tfjs's ${expected[i]}`));
    assert.ok(Math.abs(params[0]! - start[0]!) > 1e-3, 'the updates moved nothing');
    optimizer.dispose();
    x.dispose();
  });
});
