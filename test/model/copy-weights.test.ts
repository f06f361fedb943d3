import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../src/backend/tf.js';
import { copyWeightsByName } from '../../src/model/copy-weights.js';
import { buildInceptionV3, buildInferenceInceptionV3, type InceptionV3Args } from '../../src/model/inception-v3.js';
import { randomFloats, seededRandom } from '../helpers/random.js';
import { useCpuBackend } from './cpu-backend.js';

const ARGS: InceptionV3Args = { imageSize: 75, numClasses: 7, auxLogits: true, seed: 3 };
const isAux = (name: string) => name.startsWith('aux_');

/** "conv2d_7/kernel" -> its shape, for every weight of the model. */
function weightShapes(model: tfl.LayersModel): Map<string, string> {
  return new Map(model.layers.flatMap((layer) => layer.weights.map((w) => [w.originalName, w.shape.join('x')] as const)));
}

describe("tfjs-layers' BatchNormalization without a scale, in inference", () => {
  let previous: string | undefined;
  before(() => {
    previous = tf.engine().backendName ?? undefined;
  });
  after(async () => {
    await tf.setBackend(previous ?? 'cpu');
  });

  for (const backend of ['cpu', 'wasm']) {
    it(`computes (x - moving_mean) / sqrt(moving_variance + epsilon) + beta on ${backend}; in training it throws`, async () => {
      await tf.setBackend(backend);
      const input = tfl.input({ shape: [4, 4, 3] });
      const bn = tfl.layers.batchNormalization({ scale: false, center: true, epsilon: 1e-3, momentum: 0.99 });
      const model = tfl.model({ inputs: input, outputs: bn.apply(input) as tfl.SymbolicTensor });
      const [beta, mean, variance] = [tf.tensor1d([0.5, -0.2, 0.1]), tf.tensor1d([0.1, 2, -0.3]), tf.tensor1d([2, 0.5, 0.01])];
      bn.setWeights([beta, mean, variance]);
      assert.deepEqual(bn.weights.map((w) => w.originalName.split('/')[1]), ['beta', 'moving_mean', 'moving_variance']);
      const x = tf.tensor4d(randomFloats(seededRandom(9), 2 * 4 * 4 * 3), [2, 4, 4, 3]);
      const expected = tf.add(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3))), beta).dataSync();
      const actual = (model.predict(x) as tf.Tensor).dataSync();
      assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) < 1e-5), `${actual.slice(0, 6)} against ${expected.slice(0, 6)}`);
      // Why hpctrain trains with ScalelessBatchNorm: the training branch reads gamma, which is not there.
      assert.throws(() => model.apply(x, { training: true }), /Cannot read properties of undefined/);
      model.dispose();
    });
  }
});

describe('buildInferenceInceptionV3 and copyWeightsByName', function () {
  this.timeout(120_000);
  useCpuBackend();

  let trained: tfl.LayersModel;
  let exported: tfl.LayersModel;
  before(() => {
    trained = buildInceptionV3(ARGS);
    exported = buildInferenceInceptionV3(ARGS);
  });
  after(() => {
    trained.dispose();
    exported.dispose();
  });

  it("is Keras's InceptionV3 layer for layer, 313 layers, with the training model's weights under the same names but the auxiliary head's", () => {
    assert.equal(exported.layers.length, 313);
    assert.deepEqual(exported.outputNames, ['predictions']);
    const expected = new Map([...weightShapes(trained)].filter(([name]) => !isAux(name)));
    assert.deepEqual(weightShapes(exported), expected);
    for (const i of [1, 50, 94]) {
      assert.equal(exported.getLayer(`activation_${i}`).getClassName(), 'Activation');
      assert.deepEqual(exported.getLayer(`batch_normalization_${i}`).getConfig().scale, false);
    }
  });

  it("after the copy, outputs the softmax of the training model's logits", () => {
    // Batch norm statistics away from 0 and 1, so that a mixed-up copy shows.
    for (const layer of trained.layers) {
      if (layer.getClassName() !== 'ScalelessBatchNorm') continue;
      const [beta, mean, variance] = layer.getWeights();
      layer.setWeights([tf.randomUniform(beta!.shape, -0.2, 0.2, 'float32', 1), tf.randomUniform(mean!.shape, -0.3, 0.3, 'float32', 2), tf.randomUniform(variance!.shape, 0.3, 2, 'float32', 3)]);
    }
    const copied = copyWeightsByName(trained, exported, isAux);
    assert.equal(copied, exported.weights.length);
    const images = tf.randomUniform([2, 75, 75, 3], -1, 1, 'float32', 4);
    const logits = (trained.apply(images, { training: false }) as tf.Tensor[])[0]!;
    const expected = tf.softmax(logits).dataSync();
    const actual = (exported.predict(images) as tf.Tensor).dataSync();
    assert.ok(actual.every((p, i) => Math.abs(p - expected[i]!) < 1e-6), `${actual} against ${expected}`);
    assert.ok(Math.max(...actual) - Math.min(...actual) > 0.01, `probabilities ${actual}: too alike to tell a wrong copy`);
  });

  it('refuses models that differ: weights left over, missing, or of another shape', () => {
    assert.throws(() => copyWeightsByName(trained, exported, () => false), /not the same network: aux_conv2d_1\/kernel is not in the target model; /);
    const fewer = buildInferenceInceptionV3({ ...ARGS, numClasses: 5 });
    try {
      assert.throws(() => copyWeightsByName(trained, fewer, isAux), /predictions\/kernel is 2048x7 in the source model, 2048x5 in the target; predictions\/bias is 7 in the source model, 5 in the target$/);
      assert.throws(() => copyWeightsByName(fewer, trained, isAux), /aux_conv2d_1\/kernel is not in the source model; /);
    } finally {
      fewer.dispose();
    }
  });
});
