// The wasm convolution gradients against the cpu backend's reference kernels, on randomized shapes
// covering what Inception-V3 uses: 1x1, 3x3, 5x5, 1x7, 7x1 (and 1x3, 3x1) kernels, strides 1 and 2,
// valid and same padding, and larger strided maps, whose input gradients scatter many overlapping
// windows back (col2im).
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../../src/backend/wasm-grad-kernels.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

interface Case {
  n: number; h: number; w: number; ci: number; co: number; kh: number; kw: number; stride: number; pad: 'valid' | 'same';
}

const KERNELS: [number, number][] = [[1, 1], [3, 3], [5, 5], [1, 7], [7, 1], [1, 3], [3, 1]];

function makeCases(count: number, seed: number): Case[] {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const cases: Case[] = [];
  while (cases.length < count) {
    const [kh, kw] = KERNELS[cases.length % KERNELS.length]!;
    const stride = cases.length % 3 === 2 ? 2 : 1;
    const pad = pick(['valid', 'same'] as const);
    const h = kh + Math.floor(random() * 14);
    const w = kw + Math.floor(random() * 14);
    cases.push({ n: 1 + Math.floor(random() * 3), h, w, ci: 1 + Math.floor(random() * 12), co: 1 + Math.floor(random() * 12), kh, kw, stride, pad });
  }
  return cases;
}

/** Gradients of sum(conv2d(x, w) * r) with respect to x and w, computed on `backend`. */
async function gradients(backend: string, c: Case, xs: Float32Array, ws: Float32Array, rs: Float32Array): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const [dx, dw] = tf.tidy(() => {
    const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.ci]);
    const w = tf.tensor4d(ws, [c.kh, c.kw, c.ci, c.co]);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const r = tf.tensor(rs.subarray(0, y.size), y.shape);
    return tf.grads((a, b) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
  });
  const result: [Float32Array, Float32Array] = [dx!.dataSync() as Float32Array, dw!.dataSync() as Float32Array];
  tf.dispose([dx!, dw!]);
  return result;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

describe('wasm convolution gradient kernels', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('wasm');
    registerWasmGradKernels();
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  // Strided cases with at least 12x12 outputs: many overlapping windows for the col2im scatter.
  const large = makeCases(14, 777).map((c) => ({ ...c, h: c.h + 24, w: c.w + 24, stride: 2, ci: Math.min(c.ci, 6), co: Math.min(c.co, 6) }));
  const cases = [...makeCases(56, 20261122), ...large];
  for (const [i, c] of cases.entries()) {
    const label = `${c.n}x${c.h}x${c.w}x${c.ci} * ${c.kh}x${c.kw}x${c.co}, stride ${c.stride}, ${c.pad}`;
    it(`case ${i}: ${label} matches the cpu backend to 1e-4`, async () => {
      const random = seededRandom(1000 + i);
      const xs = randomFloats(random, c.n * c.h * c.w * c.ci);
      const ws = randomFloats(random, c.kh * c.kw * c.ci * c.co);
      const rs = randomFloats(random, c.n * c.h * c.w * c.co);
      const [dxCpu, dwCpu] = await gradients('cpu', c, xs, ws, rs);
      const before = tf.memory().numTensors;
      const [dxWasm, dwWasm] = await gradients('wasm', c, xs, ws, rs);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.ok(relativeError(dwWasm, dwCpu) <= 1e-4, `filter gradient error ${relativeError(dwWasm, dwCpu)}`);
      assert.ok(relativeError(dxWasm, dxCpu) <= 1e-4, `input gradient error ${relativeError(dxWasm, dxCpu)}`);
    });
  }

  it('replaces wasm\'s own Conv2DBackpropInput and adds Conv2DBackpropFilter', () => {
    assert.ok(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm'));
    assert.match(String(tf.getKernel(tf.Conv2DBackpropInput, 'wasm')!.kernelFunc), /conv2DBackpropInput/);
  });
});
