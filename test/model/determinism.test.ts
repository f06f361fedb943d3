import assert from 'node:assert/strict';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildInceptionV3, type InceptionV3Args } from '../../src/model/inception-v3.js';
import { deriveSeed } from '../../src/model/seeded-init.js';
import { useCpuBackend, kernelBytes } from './cpu-backend.js';

// Layers whose kernels are random: the first and last convolutions, one in the middle, the head.
const RANDOM_LAYERS = ['conv2d_1', 'conv2d_47', 'conv2d_94', 'predictions'];
const SMALL: InceptionV3Args = { imageSize: 75, numClasses: 10, auxLogits: false, seed: 42 };

function kernels(args: InceptionV3Args, layers = RANDOM_LAYERS): Buffer[] {
  const model: tfl.LayersModel = buildInceptionV3(args);
  try {
    return kernelBytes(model, layers);
  } finally {
    model.dispose();
  }
}

describe('Inception-V3 initialisation from a seed', function () {
  this.timeout(120_000);
  useCpuBackend();

  it('gives bitwise identical weights for the same seed, every variable included', () => {
    const a = buildInceptionV3(SMALL);
    const b = buildInceptionV3(SMALL);
    try {
      assert.equal(a.weights.length, b.weights.length);
      a.getWeights().forEach((w, i) => {
        const other = b.getWeights()[i]!;
        assert.ok(Buffer.from(w.dataSync<'float32'>().buffer).equals(Buffer.from(other.dataSync<'float32'>().buffer)), a.weights[i]!.originalName);
      });
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('gives different weights for another seed, in every random layer', () => {
    const a = kernels(SMALL);
    const b = kernels({ ...SMALL, seed: 43 });
    a.forEach((bytes, i) => assert.ok(!bytes.equals(b[i]!), RANDOM_LAYERS[i]));
  });

  it('draws each layer from its own seed: no two kernels start alike', () => {
    const [first, second] = kernels(SMALL, ['conv2d_2', 'conv2d_3']).map((b) => new Float32Array(b.buffer).slice(0, 64));
    assert.notDeepEqual(first, second);
  });

  it('leaves the main network unchanged when the auxiliary head is added', () => {
    const plain = kernels(SMALL);
    const withAux = kernels({ ...SMALL, auxLogits: true });
    plain.forEach((bytes, i) => assert.ok(bytes.equals(withAux[i]!), RANDOM_LAYERS[i]));
  });

  it('is the same in every process: pinned first values of conv2d_1 for seed 42', () => {
    // Ranks build their replicas independently and must agree; a change of the seed derivation
    // or of tfjs's generator shows up here first.
    const [conv1] = kernels(SMALL, ['conv2d_1']);
    const values = Array.from(new Float32Array(conv1!.buffer).slice(0, 3));
    assert.deepEqual(values, PINNED_CONV1_SEED42);
  });

  it('derives distinct, non-zero 32-bit seeds per layer name', () => {
    const seeds = ['conv2d_1', 'conv2d_2', 'conv2d_10', 'predictions', 'aux_logits'].map((n) => deriveSeed(42, n));
    assert.equal(new Set(seeds).size, seeds.length);
    for (const s of seeds) assert.ok(Number.isInteger(s) && s > 0 && s < 2 ** 32, String(s));
    assert.equal(deriveSeed(42, 'conv2d_1'), deriveSeed(42, 'conv2d_1'));
    assert.notEqual(deriveSeed(42, 'conv2d_1'), deriveSeed(43, 'conv2d_1'));
  });
});

const PINNED_CONV1_SEED42 = [0.05354084447026253, 0.10308545082807541, 0.049472976475954056];
