// The pooling gradients: MaxPoolGrad against tfjs's cpu kernel (on random shapes with both
// paddings, strides 1 and 2, windows of 2 and 3, and many ties, where which value of a window
// gets the gradient matters); AvgPoolGrad against its definition and against finite differences
// of tfjs's forward average pool, which tfjs's own AvgPoolGrad kernels do not match at borders.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerPoolGradKernels } from '../../src/backend/pool-grad.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

interface Case {
  shape: [number, number, number, number];
  filter: number;
  stride: number;
  pad: 'valid' | 'same';
}

type Pool = 'max' | 'avg';

function pool(kind: Pool, x: tf.Tensor4D, c: Case): tf.Tensor4D {
  return kind === 'max' ? tf.maxPool(x, c.filter, c.stride, c.pad) : tf.avgPool(x, c.filter, c.stride, c.pad);
}

/** d/dx of sum(pool(x) * r) on `backend`. */
async function poolGradient(backend: string, kind: Pool, c: Case, xs: Float32Array, rs: Float32Array): Promise<Float32Array> {
  await tf.setBackend(backend);
  const dx = tf.tidy(() => {
    const x = tf.tensor4d(xs, c.shape);
    const out = pool(kind, x, c);
    const r = tf.tensor(rs.subarray(0, out.size), out.shape);
    return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(pool(kind, input as tf.Tensor4D, c), r)))(x);
  });
  const values = dx.dataSync() as Float32Array;
  dx.dispose();
  return values;
}

/** The same gradient for the average pool, from its definition: each window's r / (its values inside the input). */
function averageGradientByDefinition(c: Case, rs: Float32Array): Float32Array {
  const [n, height, width, channels] = c.shape;
  const info = tf.backend_util.computePool2DInfo(c.shape, c.filter, c.stride, 1, c.pad);
  const dx = new Float32Array(n * height * width * channels);
  let window = 0;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < info.outHeight; oh++) {
      for (let ow = 0; ow < info.outWidth; ow++, window++) {
        const rows: number[] = [];
        const cols: number[] = [];
        for (let i = 0; i < c.filter; i++) {
          const h = oh * c.stride - info.padInfo.top + i;
          const w = ow * c.stride - info.padInfo.left + i;
          if (h >= 0 && h < height) rows.push(h);
          if (w >= 0 && w < width) cols.push(w);
        }
        for (const h of rows) {
          for (const w of cols) {
            for (let ch = 0; ch < channels; ch++) dx[((b * height + h) * width + w) * channels + ch] += rs[window * channels + ch]! / (rows.length * cols.length);
          }
        }
      }
    }
  }
  return dx;
}

function randomCase(random: () => number, i: number): Case {
  const filter = 2 + (i % 2);
  return {
    shape: [1 + Math.floor(random() * 3), filter + Math.floor(random() * 12), filter + Math.floor(random() * 12), 1 + Math.floor(random() * 20)],
    filter,
    stride: 1 + (Math.floor(i / 2) % 2),
    pad: i % 3 === 0 ? 'valid' : 'same',
  };
}

function assertClose(actual: Float32Array, expected: Float32Array, label: string): void {
  const worst = Math.max(...actual.map((v, j) => Math.abs(v - expected[j]!)));
  assert.ok(worst <= 1e-5 * Math.max(...expected.map(Math.abs), 1), `${label}: off by ${worst}`);
}

/** tfjs's own cpu kernels, the references, before ours replace them; runs `body` with `kernel` in place. */
const TFJS_CPU = { max: tf.getKernel(tf.MaxPoolGrad, 'cpu')!, avg: tf.getKernel(tf.AvgPoolGrad, 'cpu')! };

async function withCpuKernel<T>(kernel: tf.KernelConfig, body: () => Promise<T>): Promise<T> {
  const current = tf.getKernel(kernel.kernelName, 'cpu')!;
  tf.unregisterKernel(kernel.kernelName, 'cpu');
  tf.registerKernel(kernel);
  try {
    return await body();
  } finally {
    tf.unregisterKernel(kernel.kernelName, 'cpu');
    tf.registerKernel(current);
  }
}

describe('pooling gradient kernels', () => {
  before(() => {
    registerPoolGradKernels('wasm');
    registerPoolGradKernels('cpu');
  });

  it("MaxPoolGrad gives each window's gradient to the same input as tfjs's kernel, on 40 random shapes with ties", async () => {
    const random = seededRandom(21);
    for (let i = 0; i < 40; i++) {
      const c = randomCase(random, i);
      const size = c.shape.reduce((a, b) => a * b, 1);
      const xs = randomFloats(random, size).map((v) => (i % 4 < 2 ? Math.floor(v * 3) : v));
      const rs = randomFloats(random, size);
      const wasm = await poolGradient('wasm', 'max', c, xs, rs);
      const reference = await withCpuKernel(TFJS_CPU.max, () => poolGradient('cpu', 'max', c, xs, rs));
      const cpu = await poolGradient('cpu', 'max', c, xs, rs);
      const label = `case ${i}: ${JSON.stringify(c)}`;
      // Which input gets each window's gradient must agree exactly; sums of several windows'
      // gradients into one input may round differently (tfjs's kernel adds in float64).
      for (const [name, values] of [['wasm', wasm], ['cpu', cpu]] as const) {
        assert.deepEqual([...values].map((v) => v !== 0), [...reference].map((v) => v !== 0), `${label}, ${name}: where the gradient goes`);
        assertClose(values, reference, `${label}, ${name}`);
      }
    }
  });

  it('AvgPoolGrad is the gradient of the forward pool, borders of same padding included, on 40 random shapes', async () => {
    const random = seededRandom(22);
    for (let i = 0; i < 40; i++) {
      const c = randomCase(random, i);
      const size = c.shape.reduce((a, b) => a * b, 1);
      const xs = randomFloats(random, size);
      const rs = randomFloats(random, size);
      const expected = averageGradientByDefinition(c, rs);
      for (const backend of ['wasm', 'cpu']) assertClose(await poolGradient(backend, 'avg', c, xs, rs), expected, `case ${i} on ${backend}: ${JSON.stringify(c)}`);
    }
  });

  it("AvgPoolGrad of stride-1 'same' pools with odd windows (wasm: XNNPACK's forward pool of the scaled gradient) on Inception's and other shapes", async () => {
    const random = seededRandom(24);
    const shapes: [number, number, number, number][] = [[2, 7, 7, 48], [1, 3, 3, 20], [2, 1, 1, 8], [1, 9, 5, 3], [3, 2, 6, 17]];
    for (const [i, shape] of shapes.entries()) {
      for (const filter of [3, 5, 1]) {
        const c: Case = { shape, filter, stride: 1, pad: 'same' };
        const size = shape.reduce((a, b) => a * b, 1);
        const xs = randomFloats(random, size);
        const rs = randomFloats(random, size);
        const expected = averageGradientByDefinition(c, rs);
        for (const backend of ['wasm', 'cpu']) assertClose(await poolGradient(backend, 'avg', c, xs, rs), expected, `shape ${i} ${JSON.stringify(c)} on ${backend}`);
      }
    }
  });

  it("AvgPoolGrad agrees with finite differences of tfjs's forward average pool, where tfjs's own gradient does not", async () => {
    await tf.setBackend('cpu');
    const c: Case = { shape: [1, 4, 4, 1], filter: 3, stride: 1, pad: 'same' };
    const xs = randomFloats(seededRandom(23), 16);
    // Every window weighted 1: a corner's gradient is then 1/4 + 2/6 + 1/9, where tfjs's kernel gives 4/9.
    const rs = new Float32Array(16).fill(1);
    const objective = (values: Float32Array) => tf.tidy(() => tf.sum(tf.mul(pool('avg', tf.tensor4d(values, c.shape), c), tf.tensor(rs, [1, 4, 4, 1]))).dataSync()[0]!);
    const numeric = new Float32Array(16);
    for (let j = 0; j < 16; j++) {
      const plus = Float32Array.from(xs);
      const minus = Float32Array.from(xs);
      plus[j] += 1e-2;
      minus[j] -= 1e-2;
      numeric[j] = (objective(plus) - objective(minus)) / 2e-2;
    }
    const ours = await poolGradient('cpu', 'avg', c, xs, rs);
    for (let j = 0; j < 16; j++) assert.ok(Math.abs(ours[j]! - numeric[j]!) < 1e-3, `input ${j}: ${ours[j]} against ${numeric[j]}`);
    // The corner gets r/4 from its own window: tfjs's kernel gives r/9.
    const theirs = await withCpuKernel(TFJS_CPU.avg, () => poolGradient('cpu', 'avg', c, xs, rs));
    assert.ok(Math.abs(theirs[0]! - numeric[0]!) > 1e-2, 'tfjs AvgPoolGrad now matches at the corner: this kernel may be unnecessary');
  });
});
