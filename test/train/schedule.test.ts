import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { clipByGlobalNorm, setLearningRate } from '../../src/train/clip.js';
import { learningRateAt, scaledLearningRate } from '../../src/train/schedule.js';

describe('the recipe\'s learning rate and clipping', () => {
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

  it('clips by global norm only above the limit, and measures the norm either way', () => {
    const gradients = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const kept = clipByGlobalNorm(gradients, 10);
    assert.equal(kept.norm, 5);
    assert.equal(kept.gradients, gradients);
    const clipped = clipByGlobalNorm(gradients, 2);
    assert.equal(clipped.norm, 5);
    assert.deepEqual([...clipped.gradients.a!.dataSync()].map((v) => +v.toFixed(6)), [1.2, 0]);
    assert.deepEqual([...clipped.gradients.b!.dataSync()].map((v) => +v.toFixed(6)), [0, 1.6]);
    assert.ok(gradients.a.isDisposed, 'the unclipped gradients are freed');
  });

  it('changes the rate tf.train.rmsprop applies', () => {
    const x = tf.variable(tf.tensor1d([1]));
    const optimizer = tf.train.rmsprop(0.1, 0.9, 0, 1.0);
    setLearningRate(optimizer, 0);
    optimizer.applyGradients({ [x.name]: tf.tensor1d([1]) });
    assert.equal(x.dataSync()[0], 1, 'a rate of 0 moves nothing');
    setLearningRate(optimizer, 0.1);
    optimizer.applyGradients({ [x.name]: tf.tensor1d([1]) });
    assert.ok(x.dataSync()[0]! < 1);
  });
});
