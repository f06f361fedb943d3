import assert from 'node:assert/strict';
import { selectBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';
import { trainStep } from '../../src/compute/trainer.js';

describe('one training step on wasm', function () {
  this.timeout(120_000);

  it('computes filter gradients for all 94 convolutions and input gradients for all but the first', async () => {
    await selectBackend('wasm', 0);
    const model = buildInceptionV3({ imageSize: 75, numClasses: 5, auxLogits: false, seed: 2 });
    const optimizer = tf.train.rmsprop(0.001, 0.9, 0.9, 1.0);
    const batch = { images: new Float32Array(2 * 75 * 75 * 3).fill(0.5), labels: new Int32Array([0, 3]), batchSize: 2, imageSize: 75 };
    const options = { numClasses: 5, labelSmoothing: 0.1, auxLossWeight: 0 };
    const profile = await tf.profile(() => {
      trainStep(model, optimizer, batch, options);
    });
    const count = (name: string) => profile.kernels.filter((k) => k.name === name).length;
    assert.equal(count('Conv2DBackpropFilter'), 94);
    // The stem's first convolution needs no gradient with respect to the images.
    assert.equal(count('Conv2DBackpropInput'), 93);
    model.dispose();
    optimizer.dispose();
  });
});
