// wasm's BatchMatMul with transposed operands on XNNPACK, against the cpu backend: every
// combination of transposes, ranks 2 and 3, a batch of one (the path that transposes) and larger
// batches (the package's kernel), and a dense layer's gradients.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/backend/tf.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmMatMulKernel } from '../../src/backend/wasm-matmul.js';
import { randomFloats, seededRandom, relativeError } from '../helpers/random.js';


async function on<T>(backend: string, body: () => T): Promise<T> {
  await tf.setBackend(backend);
  return body();
}

describe('wasm BatchMatMul with transposes', () => {
  before(async () => {
    await tf.setBackend('wasm');
    registerWasmMatMulKernel();
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('matches the cpu backend to 1e-5 on 64 random products of every transpose combination', async () => {
    const random = seededRandom(41);
    for (let i = 0; i < 64; i++) {
      const [transposeA, transposeB] = [(i & 1) === 1, (i & 2) === 2];
      const batch = i % 8 < 6 ? 1 : 2 + (i % 3);
      const rank3 = batch > 1 || i % 8 < 3;
      // Shapes from 1 to 40, with both a long side and a short one so that either way of moving values wins somewhere.
      const [m, k, n] = [1 + Math.floor(random() * 40), 1 + Math.floor(random() * 40), 1 + Math.floor(random() * 40)];
      const aShape = [...(rank3 ? [batch] : []), ...(transposeA ? [k, m] : [m, k])];
      const bShape = [...(rank3 ? [batch] : []), ...(transposeB ? [n, k] : [k, n])];
      const as = randomFloats(random, aShape.reduce((x, y) => x * y, 1));
      const bs = randomFloats(random, bShape.reduce((x, y) => x * y, 1));
      const run = () => tf.tidy(() => {
        const c = tf.matMul(tf.tensor(as, aShape), tf.tensor(bs, bShape), transposeA, transposeB);
        return { shape: c.shape, values: c.dataSync() as Float32Array };
      });
      const expected = await on('cpu', run);
      const before = tf.memory().numTensors;
      const actual = await on('wasm', run);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      const label = `case ${i}: [${aShape}]${transposeA ? '^T' : ''} x [${bShape}]${transposeB ? '^T' : ''}`;
      assert.deepEqual(actual.shape, expected.shape, label);
      assert.ok(relativeError(actual.values, expected.values) <= 1e-5, `${label}: error ${relativeError(actual.values, expected.values)}`);
    }
  });

  it("gives a dense layer's gradients as the cpu backend does", async () => {
    const random = seededRandom(42);
    const [xs, ws, rs] = [randomFloats(random, 8 * 300), randomFloats(random, 300 * 100), randomFloats(random, 8 * 100)];
    const run = () => tf.tidy(() => {
      const grads = tf.grads((x, w) => tf.sum(tf.mul(tf.matMul(x!, w!), tf.tensor(rs, [8, 100]))))([tf.tensor(xs, [8, 300]), tf.tensor(ws, [300, 100])]);
      return grads.map((g) => g.dataSync() as Float32Array);
    });
    const [dxCpu, dwCpu] = await on('cpu', run);
    const [dxWasm, dwWasm] = await on('wasm', run);
    assert.ok(relativeError(dxWasm!, dxCpu!) <= 1e-5, 'dx');
    assert.ok(relativeError(dwWasm!, dwCpu!) <= 1e-5, 'dw');
  });
});
