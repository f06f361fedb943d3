import assert from 'node:assert/strict';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';
import { formatSummary, groupDigits, summarizeModel, type ModelSummary } from '../../src/model/summary.js';
import { useCpuBackend } from './cpu-backend.js';

describe('model summary', function () {
  this.timeout(120_000);
  useCpuBackend();

  let summary: ModelSummary;
  before(() => {
    const model: tfl.LayersModel = buildInceptionV3({ imageSize: 299, numClasses: 1000, auxLogits: false, seed: 1 });
    try {
      summary = summarizeModel(model);
    } finally {
      model.dispose();
    }
  });

  it('has one row per layer whose parameters add up to the total', () => {
    assert.equal(summary.model, 'inception_v3');
    assert.equal(summary.rows.length, 313 - 94);
    assert.equal(summary.rows.reduce((sum, r) => sum + r.params, 0), summary.totals.total);
    assert.equal(summary.totals.trainable + summary.totals.nonTrainable, summary.totals.total);
  });

  it('writes rows as Keras does', () => {
    const row = (name: string) => summary.rows.find((r) => r.name === name);
    assert.deepEqual(summary.rows[0], { name: 'input_1', type: 'InputLayer', outputShape: '(None, 299, 299, 3)', params: 0 });
    assert.deepEqual(row('conv2d_1'), { name: 'conv2d_1', type: 'Conv2D', outputShape: '(None, 149, 149, 32)', params: 864 });
    assert.deepEqual(row('batch_normalization_1'), { name: 'batch_normalization_1', type: 'ScalelessBatchNorm', outputShape: '(None, 149, 149, 32)', params: 96 });
    assert.deepEqual(row('mixed10'), { name: 'mixed10', type: 'Concatenate', outputShape: '(None, 8, 8, 2048)', params: 0 });
    assert.deepEqual(summary.rows.at(-1), { name: 'predictions', type: 'Dense', outputShape: '(None, 1000)', params: 2_049_000 });
  });

  it('prints a table and the three totals', () => {
    const text = formatSummary(summary);
    assert.match(text, /^Model: "inception_v3"\n/);
    assert.match(text, /^ Layer \(type\) +Output Shape +Param #$/m);
    assert.match(text, /^ conv2d_5 \(Conv2D\) +\(None, 71, 71, 192\) +138,240$/m);
    assert.match(text, /^ predictions \(Dense\) +\(None, 1000\) +2,049,000$/m);
    assert.match(text, /\nTotal params: 23,851,784\nTrainable params: 23,817,352\nNon-trainable params: 34,432\n/);
    assert.ok(text.endsWith('\n'));
    assert.equal(text.trimEnd().split('\n').length, 313 - 94 + 9, 'a line per layer, 4 above, 5 below');
  });

  it('groups digits in threes, whatever the locale', () => {
    assert.deepEqual([0, 999, 1000, 34_432, 23_851_784].map(groupDigits), ['0', '999', '1,000', '34,432', '23,851,784']);
  });
});
