// The optimizers on flat vectors against TensorFlow.js's own (tf.train.rmsprop, adam, momentum)
// run on the cpu backend, step after step with changing rates and clipping factors; adamw against
// PyTorch's AdamW formula, written out; weight decay on the decayed runs only.
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { addL2, clipScale, decayRunsOf, decayWeights, regularizeGradients, scaleRuns, sumOfSquares } from '../../src/optim/regularize.js';
import { newOptimizerState, slotNames, type OptimizerConfig, type OptimizerName } from '../../src/optim/types.js';
import { applyUpdate } from '../../src/optim/update.js';
import { defaultOptimizer } from '../../src/train/recipe.js';
import { seededRandom } from '../helpers/random.js';

const START = [0.5, -1.25, 2, 0.001, -0.3, 7];
const STEPS = 8;

/** tfjs's optimizer for a config, its learning rate settable per step. */
function tfjsOptimizer(config: OptimizerConfig): tf.Optimizer {
  switch (config.name) {
    case 'rmsprop':
      return tf.train.rmsprop(0.1, config.rho, config.momentum, config.epsilon);
    case 'adam':
      return tf.train.adam(0.1, config.beta1, config.beta2, config.epsilon);
    case 'momentum':
      return tf.train.momentum(0.1, config.momentum, config.nesterov);
    default:
      throw new Error(`tfjs has no ${config.name}`);
  }
}

/** Runs both for STEPS steps; returns [ours, tfjs's]. */
function runBoth(config: OptimizerConfig): [Float32Array, Float32Array] {
  const x = tf.variable(tf.tensor1d(START));
  const optimizer = tfjsOptimizer(config);
  const params = Float32Array.from(START);
  const state = newOptimizerState(config.name, START.length);
  const random = seededRandom(9);
  for (let step = 0; step < STEPS; step++) {
    const rate = 0.01 * (step + 1);
    const scale = step % 3 === 0 ? 0.5 : 1;
    const gradient = Float32Array.from(START, () => random() * 4 - 2);
    (optimizer as unknown as { learningRate: number }).learningRate = rate;
    // tfjs's momentum optimizer keeps -lr in a field of its own, set from learningRate by setLearningRate.
    (optimizer as unknown as { setLearningRate?: (lr: number) => void }).setLearningRate?.(rate);
    optimizer.applyGradients({ [x.name]: tf.mul(tf.tensor1d(gradient), scale) as tf.Tensor1D });
    applyUpdate(config, params, gradient, state, { learningRate: rate, step, scale });
  }
  const expected = Float32Array.from(x.dataSync());
  optimizer.dispose();
  x.dispose();
  return [params, expected];
}

describe('optimizers on flat vectors', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  const cases: [string, OptimizerConfig][] = [
    ['rmsprop (the paper\'s 0.9, 0.9, 1.0)', defaultOptimizer('rmsprop')],
    ['rmsprop without momentum, epsilon 1e-3', { ...defaultOptimizer('rmsprop'), momentum: 0, epsilon: 1e-3, rho: 0.8 }],
    ['adam (0.9, 0.999, 1e-8)', defaultOptimizer('adam')],
    ['adam (0.8, 0.99, 1e-3)', { ...defaultOptimizer('adam'), beta1: 0.8, beta2: 0.99, epsilon: 1e-3 }],
    ['momentum 0.9', defaultOptimizer('momentum')],
    ['momentum 0.7, Nesterov', { ...defaultOptimizer('momentum'), momentum: 0.7, nesterov: true }],
  ];
  for (const [label, config] of cases) {
    it(`${label} updates as tfjs's tf.train optimizer does, over ${STEPS} steps, to 1e-6`, () => {
      const [ours, expected] = runBoth(config);
      ours.forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) < 1e-6, `value ${i}: ${value} against tfjs's ${expected[i]}`));
      assert.ok(ours.some((value, i) => Math.abs(value - START[i]!) > 1e-2), 'the updates moved nothing');
    });
  }

  it('adamw is adam after PyTorch\'s decoupled decay: value x (1 - lr x wd) on the decayed values only', () => {
    const adamw: OptimizerConfig = { ...defaultOptimizer('adamw'), weightDecay: 0.1 };
    const runs = [{ start: 1, length: 2 }, { start: 5, length: 1 }];
    const params = Float32Array.from(START);
    const reference = Float64Array.from(START);
    const state = newOptimizerState('adamw', START.length);
    const m = new Float64Array(START.length);
    const v = new Float64Array(START.length);
    const random = seededRandom(4);
    for (let step = 0; step < STEPS; step++) {
      const rate = 0.05;
      const gradient = Float32Array.from(START, () => random() * 2 - 1);
      regularizeGradients(adamw, gradient, params, runs);
      decayWeights(adamw, params, runs, rate);
      applyUpdate(adamw, params, gradient, state, { learningRate: rate, step, scale: 1 });
      for (let i = 0; i < START.length; i++) {
        const decayed = runs.some((r) => i >= r.start && i < r.start + r.length);
        if (decayed) reference[i]! *= 1 - rate * 0.1;
        m[i] = 0.9 * m[i]! + 0.1 * gradient[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * gradient[i]! ** 2;
        reference[i]! -= (rate * (m[i]! / (1 - 0.9 ** (step + 1)))) / (Math.sqrt(v[i]! / (1 - 0.999 ** (step + 1))) + 1e-8);
      }
    }
    params.forEach((value, i) => assert.ok(Math.abs(value - reference[i]!) < 1e-5, `value ${i}: ${value} against ${reference[i]}`));
    // Without the decay the decayed values end elsewhere, the others where they were.
    const plain = Float32Array.from(START);
    const plainState = newOptimizerState('adam', START.length);
    const again = seededRandom(4);
    for (let step = 0; step < STEPS; step++) applyUpdate(adamw, plain, Float32Array.from(START, () => again() * 2 - 1), plainState, { learningRate: 0.05, step, scale: 1 });
    assert.equal(plain[0], params[0]);
    assert.notEqual(plain[1], params[1]);
    assert.notEqual(plain[5], params[5]);
  });

  it('L2 adds wd x value to the gradients of the decayed runs, before the norm, and not for adamw', () => {
    const params = Float32Array.of(1, 2, 3, 4, 5);
    const runs = decayRunsOf([2, 1, 2], [true, false, true]);
    assert.deepEqual(runs, [{ start: 0, length: 2 }, { start: 3, length: 2 }]);
    assert.deepEqual(decayRunsOf([2, 1, 2], [true, true, false]), [{ start: 0, length: 3 }], 'adjacent decayed variables make one run');
    const gradients = new Float32Array(5);
    addL2(gradients, params, runs, 0.5);
    assert.deepEqual([...gradients], [0.5, 1, 0, 2, 2.5]);
    const adamwGradients = new Float32Array(5);
    regularizeGradients({ ...defaultOptimizer('adamw'), weightDecay: 0.5 }, adamwGradients, params, runs);
    assert.deepEqual([...adamwGradients], [0, 0, 0, 0, 0]);
    const rmspropGradients = new Float32Array(5);
    regularizeGradients({ ...defaultOptimizer('rmsprop'), weightDecay: 0.5 }, rmspropGradients, params, runs);
    assert.deepEqual([...rmspropGradients], [...gradients]);
    const scaled = Float32Array.from(params);
    scaleRuns(scaled, runs, 0.5);
    assert.deepEqual([...scaled], [0.5, 1, 3, 2, 2.5]);
  });

  it('clips by global norm only above the limit: the factor tf.clip_by_global_norm applies', () => {
    const gradients = Float32Array.of(3, 0, 0, 4, 100);
    const norm = Math.sqrt(sumOfSquares(gradients, 0, 4));
    assert.equal(norm, 5, 'the norm covers [start, end) only');
    assert.equal(clipScale(norm, 10), 1);
    assert.equal(clipScale(norm, 2), 2 / 5);
    assert.equal(clipScale(norm, 0), 1, 'a limit of 0 does not clip');
    assert.equal(clipScale(Number.NaN, 2), 1, 'a NaN norm is left for the guard to report');
  });

  it('names its slots, zero at the start', () => {
    const expected: Record<OptimizerName, string[]> = { rmsprop: ['ms', 'mom'], adam: ['m', 'v'], adamw: ['m', 'v'], momentum: ['accum'] };
    for (const [name, slots] of Object.entries(expected) as [OptimizerName, string[]][]) {
      assert.deepEqual(slotNames(name), slots);
      const state = newOptimizerState(name, 3);
      assert.deepEqual(Object.keys(state), slots);
      for (const values of Object.values(state)) assert.deepEqual([...values], [0, 0, 0]);
    }
  });
});
