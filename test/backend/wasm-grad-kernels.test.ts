// The wasm convolution gradients against the cpu backend's reference kernels, on randomized shapes
// covering what Inception-V3 uses: 1x1, 3x3, 5x5, 1x7, 7x1 (and 1x3, 3x1) kernels, strides 1 and 2,
// valid and same padding, and larger strided maps, whose input gradients scatter many overlapping
// windows back (col2im); and small maps with many channels, whose input gradients take the GEMM
// with the filter as it is stored (conv-columns.ts).
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { prefersTransposedColumns } from '../../src/backend/conv-columns.js';
import { tapTrim } from '../../src/backend/conv-taps.js';
import { registerWasmGradKernels } from '../../src/backend/wasm-grad-kernels.js';
import { randomFloats, seededRandom, relativeError } from '../helpers/random.js';

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
  // Maps of 1x1 to 3x3 with 32-96 channels, every kernel, strides 1 and 2: Inception's last blocks at 75x75 and 139x139.
  const smallMaps: Case[] = KERNELS.flatMap(([kh, kw], i) => [1, 2].map((stride) => {
    const pad = stride === 1 || i % 2 === 1 ? 'same' as const : 'valid' as const;
    const [h, w] = pad === 'valid' ? [kh + (i % 2), kw] : [1 + (i % 3), 1 + ((i + 1) % 3)];
    return { n: 1 + (i % 2), h, w, ci: 32 + 8 * i, co: 40 + 6 * i, kh, kw, stride, pad };
  }));
  const cases = [...makeCases(56, 20261122), ...large, ...smallMaps];


  // Maps smaller than the kernel's reach under 'same' padding: taps that only meet padding, cut off.
  const trimmed: Case[] = [
    { n: 2, h: 1, w: 1, ci: 24, co: 20, kh: 3, kw: 3, stride: 1, pad: 'same' },
    { n: 1, h: 1, w: 2, ci: 8, co: 12, kh: 3, kw: 3, stride: 1, pad: 'same' },
    { n: 2, h: 3, w: 3, ci: 16, co: 8, kh: 1, kw: 7, stride: 1, pad: 'same' },
    { n: 2, h: 3, w: 3, ci: 16, co: 8, kh: 7, kw: 1, stride: 1, pad: 'same' },
    { n: 1, h: 2, w: 2, ci: 6, co: 5, kh: 5, kw: 5, stride: 1, pad: 'same' },
    { n: 1, h: 2, w: 3, ci: 6, co: 5, kh: 5, kw: 5, stride: 2, pad: 'same' },
    { n: 2, h: 1, w: 3, ci: 10, co: 6, kh: 3, kw: 1, stride: 2, pad: 'same' },
    { n: 3, h: 9, w: 2, ci: 4, co: 7, kh: 3, kw: 7, stride: 1, pad: 'same' },
  ];
  cases.push(...trimmed);
  const info = (c: Case) => tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.ci], [c.kh, c.kw, c.ci, c.co], c.stride, 1, c.pad, undefined, false, 'channelsLast');

  // 1x1 convolutions, which wasm's Conv2D computes as a matrix product at stride 1.
  const pointwise: Case[] = [
    { n: 2, h: 5, w: 3, ci: 24, co: 20, kh: 1, kw: 1, stride: 1, pad: 'same' },
    { n: 1, h: 1, w: 1, ci: 40, co: 12, kh: 1, kw: 1, stride: 1, pad: 'valid' },
    { n: 3, h: 7, w: 6, ci: 5, co: 9, kh: 1, kw: 1, stride: 2, pad: 'same' },
  ];

  // Fewer positions than output channels, taps all used: columns times the stored filter.
  const columnMaps: Case[] = [
    { n: 1, h: 3, w: 3, ci: 8, co: 16, kh: 3, kw: 3, stride: 1, pad: 'valid' },
    { n: 2, h: 5, w: 4, ci: 6, co: 40, kh: 3, kw: 3, stride: 2, pad: 'valid' },
    { n: 1, h: 4, w: 4, ci: 5, co: 24, kh: 1, kw: 3, stride: 1, pad: 'same' },
  ];

  for (const [i, c] of [...trimmed, ...pointwise, ...columnMaps].entries()) {
    const what = c.kh === 1 && c.kw === 1 ? 'a 1x1 convolution' : columnMaps.includes(c) ? 'a map of fewer positions than channels' : "a map smaller than the kernel's reach";
    it(`forward pass of ${what} (${c.h}x${c.w} * ${c.kh}x${c.kw}, stride ${c.stride}) matches the cpu backend`, async () => {
      if (trimmed.includes(c)) assert.ok(tapTrim(info(c)), 'no tap was left out');
      if (columnMaps.includes(c)) assert.equal(tapTrim(info(c)), undefined, 'a tap was left out');
      const random = seededRandom(5000 + i);
      const xs = randomFloats(random, c.n * c.h * c.w * c.ci);
      const ws = randomFloats(random, c.kh * c.kw * c.ci * c.co);
      const forward = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => tf.conv2d(tf.tensor4d(xs, [c.n, c.h, c.w, c.ci]), tf.tensor4d(ws, [c.kh, c.kw, c.ci, c.co]), c.stride, c.pad).dataSync() as Float32Array);
      };
      const expected = await forward('cpu');
      assert.ok(relativeError(await forward('wasm'), expected) <= 1e-5);
    });
  }

  it('takes the GEMM with the stored filter for the small maps, and the other paths for the large ones', () => {
    assert.ok(smallMaps.every((c) => prefersTransposedColumns(info(c))), 'a small map took another path');
    assert.ok(large.every((c) => !prefersTransposedColumns(info(c))), 'a large map took the GEMM');
  });
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
