import assert from 'node:assert/strict';
import type * as tfl from '@tensorflow/tfjs-layers';
import { OptionsError } from '../../src/errors.js';
import { buildInceptionV3, validateInceptionV3Args, type InceptionV3Args } from '../../src/model/inception-v3.js';
import { summarizeModel } from '../../src/model/summary.js';
import { useCpuBackend } from './cpu-backend.js';

const KERAS_299: InceptionV3Args = { imageSize: 299, numClasses: 1000, auxLogits: false, seed: 1 };

function outputShape(model: tfl.LayersModel, layer: string): (number | null)[] {
  return model.getLayer(layer).outputShape as (number | null)[];
}

function withModel<T>(args: InceptionV3Args, use: (model: tfl.LayersModel) => T): T {
  const model = buildInceptionV3(args);
  try {
    return use(model);
  } finally {
    model.dispose();
  }
}

describe('Inception-V3', function () {
  this.timeout(120_000);
  useCpuBackend();

  describe('as Keras builds it (299x299, 1000 classes)', () => {
    let model: tfl.LayersModel;
    before(() => {
      model = buildInceptionV3(KERAS_299);
    });
    after(() => model.dispose());

    it('has the parameter counts of keras.applications.InceptionV3', () => {
      assert.deepEqual(summarizeModel(model).totals, { total: 23_851_784, trainable: 23_817_352, nonTrainable: 34_432 });
      assert.equal(model.countParams(), 23_851_784);
    });

    it("has Keras's 313 layers under Keras's names, each activation_N fused into batch_normalization_N", () => {
      const names = model.layers.map((l) => l.name);
      assert.equal(names.length, 313 - 94);
      assert.equal(new Set(names).size, 313 - 94, 'names are unique');
      const expected = [
        'input_1',
        ...[1, 2, 3, 4].map((i) => `max_pooling2d_${i}`),
        ...Array.from({ length: 9 }, (_, i) => `average_pooling2d_${i + 1}`),
        ...Array.from({ length: 11 }, (_, i) => `mixed${i}`),
        'mixed9_0', 'mixed9_1', 'concatenate_1', 'concatenate_2', 'avg_pool', 'predictions',
      ];
      for (let i = 1; i <= 94; i++) expected.push(`conv2d_${i}`, `batch_normalization_${i}`);
      assert.deepEqual([...names].sort(), [...expected].sort());
      for (let i = 1; i <= 94; i++) assert.equal(model.getLayer(`batch_normalization_${i}`).getConfig().relu, true);
    });

    it('numbers the conv2d_bn blocks in the order Keras creates them', () => {
      // Spot checks against keras/applications/inception_v3.py: the stem is conv2d_1..5; mixed0
      // starts at conv2d_6 (1x1, 64); its pool branch is conv2d_12 (32); mixed3's stride-2 3x3 is
      // conv2d_27 (384); mixed10's pool branch is the last, conv2d_94 (192).
      const kernel = (name: string) => model.getLayer(name).getWeights()[0]!.shape;
      assert.deepEqual(kernel('conv2d_1'), [3, 3, 3, 32]);
      assert.deepEqual(kernel('conv2d_5'), [3, 3, 80, 192]);
      assert.deepEqual(kernel('conv2d_6'), [1, 1, 192, 64]);
      assert.deepEqual(kernel('conv2d_12'), [1, 1, 192, 32]);
      assert.deepEqual(kernel('conv2d_27'), [3, 3, 288, 384]);
      assert.deepEqual(kernel('conv2d_31'), [1, 1, 768, 192]);
      assert.deepEqual(kernel('conv2d_33'), [1, 7, 128, 128]);
      assert.deepEqual(kernel('conv2d_94'), [1, 1, 2048, 192]);
      assert.deepEqual(kernel('predictions'), [2048, 1000]);
    });

    it('uses conv without bias and batch norm without scale, momentum 0.99, epsilon 1e-3', () => {
      assert.deepEqual(model.getLayer('conv2d_42').weights.map((w) => w.originalName), ['conv2d_42/kernel']);
      const bn = model.getLayer('batch_normalization_42');
      assert.deepEqual(
        bn.weights.map((w) => [w.originalName, w.shape, w.trainable]),
        [
          ['batch_normalization_42/beta', [160], true],
          ['batch_normalization_42/moving_mean', [160], false],
          ['batch_normalization_42/moving_variance', [160], false],
        ],
      );
      const config = bn.getConfig();
      assert.deepEqual([config.momentum, config.epsilon], [0.99, 1e-3]);
    });

    it('gives the 299x299 shapes of the paper', () => {
      assert.deepEqual(outputShape(model, 'mixed0'), [null, 35, 35, 256]);
      assert.deepEqual(outputShape(model, 'mixed2'), [null, 35, 35, 288]);
      assert.deepEqual(outputShape(model, 'mixed7'), [null, 17, 17, 768]);
      assert.deepEqual(outputShape(model, 'mixed8'), [null, 8, 8, 1280]);
      assert.deepEqual(outputShape(model, 'mixed10'), [null, 8, 8, 2048]);
      assert.deepEqual(outputShape(model, 'avg_pool'), [null, 2048]);
      assert.deepEqual(model.outputs.map((o) => o.shape), [[null, 1000]]);
      assert.deepEqual(model.outputNames, ['predictions']);
    });
  });

  describe('with the auxiliary classifier', () => {
    // By hand: 1x1 conv 768*128 = 98,304; its BN 3*128 = 384 (128 trainable); 5x5 conv
    // 5*5*128*768 = 2,457,600; its BN 3*768 = 2,304 (768 trainable); dense 768*1000 + 1000 = 769,000.
    // The head: 3,327,592, of which 1,792 (the moving means and variances) not trainable.
    const AUX_1000 = { total: 3_327_592, trainable: 3_325_800, nonTrainable: 1_792 };

    it('adds 3,327,592 parameters and a second output at 299x299', () => {
      withModel({ ...KERAS_299, auxLogits: true }, (model) => {
        assert.deepEqual(summarizeModel(model).totals, {
          total: 23_851_784 + AUX_1000.total, // 27,179,376
          trainable: 23_817_352 + AUX_1000.trainable, // 27,143,152
          nonTrainable: 34_432 + AUX_1000.nonTrainable, // 36,224
        });
        assert.deepEqual(model.outputNames, ['predictions', 'aux_logits']);
        assert.deepEqual(model.outputs.map((o) => o.shape), [[null, 1000], [null, 1000]]);
        assert.equal(model.layers.length, 313 - 94 + 7);
        assert.deepEqual(outputShape(model, 'aux_average_pooling2d_1'), [null, 5, 5, 768]);
        assert.deepEqual(outputShape(model, 'aux_batch_normalization_1'), [null, 5, 5, 128]);
        assert.deepEqual(outputShape(model, 'aux_batch_normalization_2'), [null, 1, 1, 768]);
      });
    });

    it('keeps its parameter count at 75x75, where mixed7 is 3x3, and for 10 classes', () => {
      withModel({ imageSize: 75, numClasses: 10, auxLogits: true, seed: 1 }, (model) => {
        assert.deepEqual(outputShape(model, 'mixed7'), [null, 3, 3, 768]);
        assert.deepEqual(outputShape(model, 'aux_batch_normalization_2'), [null, 1, 1, 768]);
        const withoutHead = 23_851_784 - 2_049_000 + 2048 * 10 + 10;
        assert.equal(model.countParams(), withoutHead + 2_558_592 + 769 * 10);
      });
    });
  });

  it('builds at the Keras minimum of 75x75 and at 139x139, with their shapes', () => {
    withModel({ imageSize: 75, numClasses: 7, auxLogits: false, seed: 1 }, (model) => {
      assert.deepEqual(outputShape(model, 'conv2d_1'), [null, 37, 37, 32]);
      assert.deepEqual(outputShape(model, 'mixed0'), [null, 7, 7, 256]);
      assert.deepEqual(outputShape(model, 'mixed3'), [null, 3, 3, 768]);
      assert.deepEqual(outputShape(model, 'mixed10'), [null, 1, 1, 2048]);
      assert.deepEqual(model.outputs[0]!.shape, [null, 7]);
    });
    withModel({ imageSize: 139, numClasses: 1000, auxLogits: false, seed: 1 }, (model) => {
      assert.deepEqual(outputShape(model, 'mixed0'), [null, 15, 15, 256]);
      assert.deepEqual(outputShape(model, 'mixed7'), [null, 7, 7, 768]);
      assert.deepEqual(outputShape(model, 'mixed10'), [null, 3, 3, 2048]);
      // Convolution weights do not depend on the input size.
      assert.equal(model.countParams(), 23_851_784);
    });
  });

  it('rejects sizes and class counts it cannot build, quoting the value', () => {
    const cases: [Partial<InceptionV3Args>, RegExp][] = [
      [{ imageSize: 74 }, /image size 74 is too small for Inception-V3: it needs at least 75x75/],
      [{ imageSize: 0 }, /image size 0 is too small/],
      [{ imageSize: 150.5 }, /image size 150.5 is not a whole number of pixels/],
      [{ numClasses: 0 }, /number of classes 0 is not a positive integer/],
      [{ numClasses: 2.5 }, /number of classes 2.5 is not a positive integer/],
      [{ seed: 0.5 }, /seed 0.5 is not an integer/],
    ];
    for (const [change, message] of cases) {
      const args = { ...KERAS_299, ...change };
      assert.throws(() => validateInceptionV3Args(args), (e: unknown) => e instanceof OptionsError && message.test(e.message), JSON.stringify(change));
      assert.throws(() => buildInceptionV3(args), OptionsError);
    }
    assert.doesNotThrow(() => validateInceptionV3Args({ ...KERAS_299, imageSize: 75, numClasses: 1 }));
  });
});
