import assert from 'node:assert/strict';
import { learningRateAt, type Schedule } from '../../src/train/schedule.js';

const BASE: Schedule = { kind: 'staircase', peakRate: 0.09, warmupSteps: 20, totalSteps: 100, stepsPerEpoch: 10, decayRate: 0.94, decayEpochs: 2 };

describe('learning-rate schedules', () => {
  it('warms up linearly, then decays by 0.94 every 2 epochs (staircase)', () => {
    assert.equal(learningRateAt(0, BASE), 0.09 / 20);
    assert.equal(learningRateAt(9, BASE), 0.09 / 2);
    assert.equal(learningRateAt(19, BASE), 0.09);
    // Epochs 2 and 3: the first decay (the warm-up's epochs count towards it).
    assert.equal(learningRateAt(20, BASE), 0.09 * 0.94);
    assert.equal(learningRateAt(39, BASE), 0.09 * 0.94);
    assert.equal(learningRateAt(40, BASE), 0.09 * 0.94 ** 2);
    assert.equal(learningRateAt(0, { ...BASE, warmupSteps: 0 }), 0.09);
  });

  it('decays along a cosine from the peak after warm-up to 0 at the last step', () => {
    const cosine: Schedule = { ...BASE, kind: 'cosine', warmupSteps: 10, totalSteps: 110 };
    assert.equal(learningRateAt(9, cosine), 0.09);
    assert.equal(learningRateAt(10, cosine), 0.09);
    assert.ok(Math.abs(learningRateAt(60, cosine) - 0.045) < 1e-12, 'half way: half the peak');
    assert.ok(Math.abs(learningRateAt(35, cosine) - 0.09 * 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-12);
    assert.ok(learningRateAt(109, cosine) < 0.09 * 0.001);
    assert.equal(learningRateAt(110, cosine), 0);
    assert.equal(learningRateAt(500, cosine), 0, 'past the end (a resumed run with more steps keeps 0 until re-planned)');
    for (let step = 11; step < 110; step++) assert.ok(learningRateAt(step, cosine) < learningRateAt(step - 1, cosine), `falls at step ${step}`);
  });

  it('stays at the peak after warm-up when constant', () => {
    const constant: Schedule = { ...BASE, kind: 'constant' };
    assert.equal(learningRateAt(5, constant), 0.09 * 6 / 20);
    assert.equal(learningRateAt(20, constant), 0.09);
    assert.equal(learningRateAt(99, constant), 0.09);
  });
});
