// wasm's Slice and SplitV, which copy only what they keep, against the cpu backend on random
// shapes of rank 1 to 5: cuts along every axis, whole trailing axes (merged into longer rows),
// empty slices, int32 tensors; and the concatenation gradient, which splits its dy with SplitV.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmSliceKernels } from '../../src/backend/wasm-slice.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

interface SliceCase {
  shape: number[];
  begin: number[];
  size: number[];
}

function randomSlice(random: () => number, i: number): SliceCase {
  const rank = 1 + (i % 5);
  const shape = Array.from({ length: rank }, () => 1 + Math.floor(random() * 6));
  const begin: number[] = [];
  const size: number[] = [];
  for (const length of shape) {
    const whole = random() < 0.4;
    const start = whole ? 0 : Math.floor(random() * length);
    begin.push(start);
    // -1: to the end, as tf.slice allows; 0 now and then: an empty slice.
    const roll = random();
    size.push(whole ? length : roll < 0.15 ? -1 : roll < 0.2 ? 0 : 1 + Math.floor(random() * (length - start)));
  }
  return { shape, begin, size };
}

async function on<T>(backend: string, body: () => T): Promise<T> {
  await tf.setBackend(backend);
  return body();
}

describe('wasm Slice and SplitV', () => {
  const packaged = { slice: tf.getKernel(tf.Slice, 'wasm')!.kernelFunc, splitV: tf.getKernel(tf.SplitV, 'wasm')!.kernelFunc };
  before(async () => {
    await tf.setBackend('wasm');
    registerWasmSliceKernels();
  });

  it("replaces the package's kernels, once however often it is called", () => {
    registerWasmSliceKernels();
    assert.notEqual(tf.getKernel(tf.Slice, 'wasm')!.kernelFunc, packaged.slice);
    assert.notEqual(tf.getKernel(tf.SplitV, 'wasm')!.kernelFunc, packaged.splitV);
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('slices like the cpu backend on 200 random float32 and int32 cases of rank 1 to 5', async () => {
    const random = seededRandom(31);
    for (let i = 0; i < 200; i++) {
      const c = randomSlice(random, i);
      const dtype = i % 4 === 3 ? 'int32' : 'float32';
      const values = randomFloats(random, c.shape.reduce((a, b) => a * b, 1)).map((v) => (dtype === 'int32' ? Math.round(v * 100) : v));
      const run = () => tf.tidy(() => {
        const y = tf.slice(tf.tensor(values, c.shape, dtype), c.begin, c.size);
        return { shape: y.shape, values: [...y.dataSync()] };
      });
      const expected = await on('cpu', run);
      const before = tf.memory().numTensors;
      const actual = await on('wasm', run);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.deepEqual(actual, expected, `case ${i}: ${JSON.stringify(c)} ${dtype}`);
    }
  });

  it('splits like the cpu backend along every axis, and the concatenation gradient comes out whole', async () => {
    const random = seededRandom(32);
    for (let i = 0; i < 40; i++) {
      const rank = 1 + (i % 4);
      const shape = Array.from({ length: rank }, () => 2 + Math.floor(random() * 5));
      const axis = i % rank;
      const first = 1 + Math.floor(random() * (shape[axis]! - 1));
      const splits = [first, shape[axis]! - first];
      const values = randomFloats(random, shape.reduce((a, b) => a * b, 1));
      const run = () => tf.tidy(() => tf.split(tf.tensor(values, shape), splits, axis).map((t) => [...t.dataSync()]));
      assert.deepEqual(await on('wasm', run), await on('cpu', run), `case ${i}: ${shape} split ${splits} on axis ${axis}`);
      const weights = randomFloats(random, values.length);
      const gradient = () => tf.tidy(() => {
        const parts = tf.split(tf.tensor(values, shape), splits, axis);
        const dx = tf.grads((a, b) => tf.sum(tf.mul(tf.concat([a!, b!], axis), tf.tensor(weights, shape))))(parts);
        return dx.map((t) => [...t.dataSync()]);
      });
      assert.deepEqual(await on('wasm', gradient), await on('cpu', gradient), `case ${i}: the concat gradient`);
    }
  });
});
