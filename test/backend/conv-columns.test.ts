// The GEMM-over-columns filter gradient (conv-columns.ts) called directly: made one image at a
// time (the chunks that bound its memory at 299x299), with unequal strides and paddings, against
// the cpu backend's reference kernel. The heap is strewn with NaNs first: the columns are not
// zeroed as a whole, and a value left unwritten would show.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { columnFilterGradient } from '../../src/backend/conv-columns.js';
import { KernelScope } from '../../src/backend/kernel-scope.js';
import { randomFloats, seededRandom, relativeError } from '../helpers/random.js';

interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
}

const CASES: Case[] = [
  { x: [3, 9, 8, 5], filter: [3, 3, 5, 4], strides: [1, 1], pad: 'same' },
  { x: [4, 11, 10, 3], filter: [3, 3, 3, 6], strides: [2, 2], pad: 'valid' },
  { x: [2, 12, 9, 4], filter: [1, 7, 4, 3], strides: [1, 2], pad: 'same' },
  { x: [3, 10, 13, 2], filter: [5, 3, 2, 5], strides: [2, 1], pad: 'valid' },
  { x: [2, 6, 6, 7], filter: [1, 1, 7, 3], strides: [2, 2], pad: 'same' },
];


describe('filter gradient as a GEMM over columns', () => {
  after(async () => {
    await tf.setBackend('cpu');
  });

  for (const [i, c] of CASES.entries()) {
    for (const chunk of ['whole batch', 'one image'] as const) {
      it(`${c.x.join('x')} * ${c.filter.join('x')}, strides ${c.strides.join('x')}, ${c.pad}, ${chunk} at a time: matches the cpu backend to 1e-5`, async () => {
        const random = seededRandom(700 + i);
        const xs = randomFloats(random, c.x.reduce((a, b) => a * b, 1));
        const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, undefined, false, 'channelsLast');
        const dys = randomFloats(random, info.outShape.reduce((a, b) => a * b, 1));
        await tf.setBackend('cpu');
        const expected = tf.tidy(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor(xs, c.x), dy: tf.tensor(dys, info.outShape) },
          { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter } as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array;
        await tf.setBackend('wasm');
        tf.tidy(() => tf.fill([1 << 16], Number.NaN).dataSync());
        const before = tf.memory().numTensors;
        const actual = tf.tidy(() => {
          const [x, dy] = [tf.tensor(xs, c.x), tf.tensor(dys, info.outShape)];
          const scope = new KernelScope(tf.backend());
          const perImage = info.outHeight * info.outWidth * c.filter[0] * c.filter[1] * c.filter[2];
          const result = scope.finish(columnFilterGradient(scope, x, dy, info, chunk === 'one image' ? perImage : undefined));
          return tf.engine().makeTensorFromTensorInfo(result);
        });
        assert.deepEqual(actual.shape, c.filter);
        const values = actual.dataSync() as Float32Array;
        actual.dispose();
        assert.equal(tf.memory().numTensors, before, 'tensors leaked');
        assert.ok(relativeError(values, expected) <= 1e-5, `error ${relativeError(values, expected)}`);
      });
    }
  }
});
