import assert from 'node:assert/strict';
import { OptionsError } from '../../src/errors.js';
import { describeRecipe, resolveRecipe } from '../../src/train/recipe.js';

const RUN = { globalBatch: 32, stepsPerEpoch: 62, totalSteps: 248 };

describe('training recipes', () => {
  it('default: AdamW with a warm-up of 5% of the run, cosine decay, no clipping, no moving average', () => {
    const recipe = resolveRecipe('default', {}, RUN);
    assert.equal(recipe.optimizer.name, 'adamw');
    assert.equal(recipe.optimizer.weightDecay, 0.01);
    assert.equal(recipe.optimizer.epsilon, 1e-8);
    assert.equal(recipe.schedule.kind, 'cosine');
    assert.equal(recipe.schedule.warmupSteps, 13);
    assert.ok(recipe.schedule.warmupSteps < RUN.stepsPerEpoch, 'a one-epoch run finishes its warm-up');
    assert.equal(recipe.schedule.peakRate, 0.001);
    assert.equal(resolveRecipe('default', {}, { ...RUN, globalBatch: 128 }).schedule.peakRate, 0.002, 'sqrt scaling with the global batch');
    assert.equal(recipe.clipNorm, 0);
    assert.equal(recipe.emaDecay, 0);
    assert.equal(recipe.labelSmoothing, 0.1);
  });

  it('inception-paper: RMSProp 0.9/0.9/1.0, 0.045 x batch / 1600, 2 warm-up epochs, x0.94 every 2 epochs, clip 2, L2 4e-5, EMA 0.9999', () => {
    const recipe = resolveRecipe('inception-paper', {}, { ...RUN, globalBatch: 1600 });
    assert.deepEqual(
      [recipe.optimizer.name, recipe.optimizer.rho, recipe.optimizer.momentum, recipe.optimizer.epsilon, recipe.optimizer.weightDecay],
      ['rmsprop', 0.9, 0.9, 1.0, 4e-5],
    );
    assert.equal(recipe.schedule.peakRate, 0.045);
    assert.equal(recipe.schedule.warmupSteps, 124);
    assert.deepEqual([recipe.schedule.kind, recipe.schedule.decayRate, recipe.schedule.decayEpochs], ['staircase', 0.94, 2]);
    assert.deepEqual([recipe.clipNorm, recipe.labelSmoothing, recipe.emaDecay, recipe.auxLossWeight], [2, 0.1, 0.9999, 0.4]);
  });

  it('flags override the recipe, and an optimizer brings its own settings and learning-rate rule', () => {
    const sgd = resolveRecipe('default', { optimizer: 'momentum', nesterov: true }, RUN);
    assert.deepEqual([sgd.optimizer.name, sgd.optimizer.momentum, sgd.optimizer.nesterov, sgd.optimizer.weightDecay], ['momentum', 0.9, true, 4e-5]);
    assert.equal(sgd.schedule.peakRate, 0.1 * 32 / 256);
    assert.equal(sgd.schedule.kind, 'cosine', 'the recipe\'s schedule stays');
    const given = resolveRecipe('inception-paper', { learningRate: 0.01, warmupEpochs: 0, clipNorm: 0, emaDecay: 0, schedule: 'constant' }, RUN);
    assert.deepEqual([given.schedule.peakRate, given.schedule.warmupSteps, given.clipNorm, given.emaDecay, given.schedule.kind], [0.01, 0, 0, 0, 'constant']);
    assert.equal(given.learningRateRule, 'given');
  });

  it('refuses settings that cannot work, saying which', () => {
    assert.throws(() => resolveRecipe('default', { beta2: 1 }, RUN), (e: unknown) => e instanceof OptionsError && /--beta2 1 is not in \[0, 1\)/.test(e.message));
    assert.throws(() => resolveRecipe('default', { nesterov: true }, RUN), /--nesterov applies to --optimizer momentum, not adamw/);
    assert.throws(() => resolveRecipe('default', { optimizer: 'adam', epsilon: 0 }, RUN), /--epsilon 0 must be above 0/);
  });

  it('describes itself value by value', () => {
    const line = describeRecipe(resolveRecipe('default', {}, RUN), 95);
    assert.equal(line, 'recipe default: adamw (beta1 0.9, beta2 0.999, epsilon 1e-8, decoupled weight decay 0.01 on 95 kernels); ' +
      'learning rate 0.001 (0.001 x sqrt(global batch 32 / 32)), warm-up 13 of 248 steps, then cosine decay to 0 at step 248; ' +
      'no clipping; label smoothing 0.1; no moving average');
    assert.match(describeRecipe(resolveRecipe('inception-paper', {}, RUN), 95),
      /^recipe inception-paper: rmsprop \(decay 0\.9, momentum 0\.9, epsilon 1, L2 0\.00004 on 95 kernels\); learning rate 0\.0009 \(0\.045 x global batch 32 \/ 1600\), warm-up 124 of 248 steps, then x0\.94 every 2 epochs of 62 steps; gradients clipped to global norm 2; label smoothing 0\.1; moving average 0\.9999$/);
  });
});
