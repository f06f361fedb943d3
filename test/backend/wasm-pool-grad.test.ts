// The wasm MaxPoolGrad against tfjs's cpu kernel, on random shapes with both paddings, strides 1
// and 2, windows of 2 and 3, and inputs with many ties (small integers), where which value of a
// window gets the gradient matters.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../../src/backend/wasm-grad-kernels.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

interface Case {
  shape: [number, number, number, number];
  filter: number;
  stride: number;
  pad: 'valid' | 'same';
  ties: boolean;
}

async function poolGradient(backend: string, c: Case, xs: Float32Array, rs: Float32Array): Promise<Float32Array> {
  await tf.setBackend(backend);
  const dx = tf.tidy(() => {
    const x = tf.tensor4d(xs, c.shape);
    const r = tf.tensor(rs.subarray(0, tf.maxPool(x, c.filter, c.stride, c.pad).size), tf.maxPool(x, c.filter, c.stride, c.pad).shape);
    return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(input as tf.Tensor4D, c.filter, c.stride, c.pad), r)))(x);
  });
  const values = dx.dataSync() as Float32Array;
  dx.dispose();
  return values;
}

describe('wasm MaxPoolGrad', () => {
  before(() => registerWasmGradKernels());

  it("gives each window's gradient to the same input as the cpu kernel, on 40 random shapes with ties", async () => {
    const random = seededRandom(21);
    for (let i = 0; i < 40; i++) {
      const filter = 2 + (i % 2);
      const c: Case = {
        shape: [1 + Math.floor(random() * 3), filter + Math.floor(random() * 12), filter + Math.floor(random() * 12), 1 + Math.floor(random() * 20)],
        filter,
        stride: 1 + (Math.floor(i / 2) % 2),
        pad: i % 3 === 0 ? 'same' : 'valid',
        ties: i % 4 < 2,
      };
      const size = c.shape.reduce((a, b) => a * b, 1);
      const xs = randomFloats(random, size).map((v) => (c.ties ? Math.floor(v * 3) : v * 2 - 1));
      const rs = randomFloats(random, size);
      const ours = await poolGradient('wasm', c, xs, rs);
      const reference = await poolGradient('cpu', c, xs, rs);
      const label = `case ${i}: ${JSON.stringify(c)}`;
      // Which input gets each window's gradient must agree exactly; sums of several windows'
      // gradients into one input may round differently (the cpu kernel adds in float64).
      assert.deepEqual([...ours].map((v) => v !== 0), [...reference].map((v) => v !== 0), `${label}: where the gradient goes`);
      const worst = Math.max(...ours.map((v, j) => Math.abs(v - reference[j]!)));
      assert.ok(worst <= 1e-5 * Math.max(...reference.map(Math.abs), 1), `${label}: off by ${worst}`);
    }
  });
});
