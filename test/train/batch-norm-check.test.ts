import assert from 'node:assert/strict';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';
import { batchNormWarning, lastMapSize, MIN_NORMALIZED_VALUES } from '../../src/train/batch-norm-check.js';
import { useCpuBackend } from '../model/cpu-backend.js';

describe('the batch-norm check', function () {
  this.timeout(60_000);
  useCpuBackend();

  it('knows the size of mixed10\'s maps as the model builds them', () => {
    for (const size of [75, 99, 107, 139, 171, 299]) {
      const model = buildInceptionV3({ imageSize: size, numClasses: 3, auxLogits: false, seed: 1 });
      try {
        const shape = (model.getLayer('mixed10') as tfl.layers.Layer).outputShape as number[];
        assert.deepEqual([shape[1], shape[2]], [lastMapSize(size), lastMapSize(size)], `at ${size}x${size}`);
      } finally {
        model.dispose();
      }
    }
    assert.deepEqual([75, 139, 299].map(lastMapSize), [1, 3, 8]);
  });

  it('warns below 32 values per channel, naming an image size and a batch that avoid it', () => {
    assert.equal(MIN_NORMALIZED_VALUES, 32);
    assert.equal(batchNormWarning(32, 75), undefined);
    assert.equal(batchNormWarning(4, 139), undefined, '4 x 3x3 = 36 values');
    const warning = batchNormWarning(8, 75)!;
    assert.match(warning, /normalises over 8 values per channel \(batch 8 per worker x 1x1 maps at 75x75\)/);
    assert.match(warning, /use --image-size 107 \(2x2 maps\) or --batch-size 32 or more$/);
    assert.match(batchNormWarning(2, 107)!, /over 8 values per channel \(batch 2 per worker x 2x2 maps at 107x107\).* use --image-size 171 \(4x4 maps\) or --batch-size 8 or more$/);
  });
});
