// A proposal's figures: BatchNormReluGrad (src/backend/fused-kernels.ts, two JavaScript passes
// over dy, x and y) against the same two passes in WebAssembly SIMD (bench/wasm/
// batch-norm-relu-grad.wat), on the batch-norm shapes of one Inception-V3 training step, on
// tfjs-backend-wasm's own heap: the SIMD module imports the backend's memory, so a kernel can run
// it on tensors in place. One line per shape and a total; dx and dbeta of both are compared.
//   taskset -c 1 node dist/bench/bn-simd.js [--size 139]
import { performance } from 'node:perf_hooks';
import minimist from 'minimist';
import { BATCH_NORM_RELU, BATCH_NORM_RELU_GRAD, registerFusedKernels } from '../src/backend/fused-kernels.js';
import { selectBackend } from '../src/backend/select.js';
import { tf } from '../src/backend/tf.js';
import { tensorMemory } from '../src/backend/tensor-memory.js';
import { buildInceptionV3 } from '../src/model/inception-v3.js';
import { BenchError, parseCount, rejectUnknown } from './figures.js';

/** wat2wasm --enable-simd bench/wasm/batch-norm-relu-grad.wat, base64. */
const MODULE_BASE64 = 'AGFzbQEAAAABFAJgBn9/f39/fwBgB39/f39/f38AAg8BA2VudgZtZW1vcnkCAAEDAwIAAQcZAgpibkdyYWRTdW1zAAAIYm5HcmFkRHgAAQrcAwKeAgMDfwJ7An9BACEGAkADQCAGIARPDQEgBiAFbEECdCEIQQAhBwJAA0AgByAFTw0BIAAgCCAHQQJ0amr9AAQAIAIgCCAHQQJ0amr9AAQA/QwAAAAAAAAAAAAAAAAAAAAA/UT9TiEJIAEgCCAHQQJ0amr9AAQAIQogAyAHQQN0aiELIAsgBUEDdGohDCALIAv9AAQAIAn9X/3wAf0LBAAgCyAL/QAEECAJIAn9DQgJCgsMDQ4PAAECAwQFBgf9X/3wAf0LBBAgCSAK/eYBIQkgDCAM/QAEACAJ/V/98AH9CwQAIAwgDP0ABBAgCSAJ/Q0ICQoLDA0ODwABAgMEBQYH/V/98AH9CwQQIAdBBGohBwwACwsgBkEBaiEGDAALCwu5AQIEfwF7QQAhBwJAA0AgByAFTw0BQQAhCAJAA0AgCCAGTw0BIAcgBmwgCGpBAnQhCSAEIAhBAnRqIQogACAJav0ABAAgAiAJav0ABAD9DAAAAAAAAAAAAAAAAAAAAAD9RP1OIQsgAyAJaiALIAr9AAQA/eYBIAEgCWr9AAQAIAogBkECdGr9AAQA/eYB/eQBIAogBkEDdGr9AAQA/eQB/QsEACAIQQRqIQgMAAsLIAdBAWohBwwACwsL';
const EPSILON = 1e-3;

interface SimdPasses {
  bnGradSums(dy: number, x: number, y: number, sums: number, count: number, channels: number): void;
  bnGradDx(dy: number, x: number, y: number, dx: number, coefficients: number, count: number, channels: number): void;
}

/** The input shapes of every batch norm of the model at this size, with how often each occurs. */
function batchNormShapes(size: number): Map<string, number> {
  const model = buildInceptionV3({ imageSize: size, numClasses: 1000, auxLogits: false, seed: 1 });
  const shapes = new Map<string, number>();
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'ScalelessBatchNorm') continue;
    const shape = [8, ...(layer.input as unknown as { shape: number[] }).shape.slice(1)].join('x');
    shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
  }
  model.dispose();
  return shapes;
}

function best(run: () => void, times = 5): number {
  run();
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

async function main(size: number): Promise<void> {
  await selectBackend('wasm', 0);
  registerFusedKernels();
  const backend = tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } } & tf.KernelBackend;
  const { instance } = await WebAssembly.instantiate(Buffer.from(MODULE_BASE64, 'base64'), { env: { memory: backend.wasm.asm.memory } });
  const simd = instance.exports as unknown as SimdPasses;
  const memory = tensorMemory(backend, 'wasm');
  const offset = (t: tf.Tensor): number => memory.view({ dataId: t.dataId, shape: t.shape, dtype: 'float32' }).byteOffset;
  let totalJs = 0;
  let totalSimd = 0;
  for (const [text, count] of batchNormShapes(size)) {
    const shape = text.split('x').map(Number);
    const channels = shape[3]!;
    if (channels % 4 !== 0) throw new BenchError(`${text}: the prototype needs channels in fours`);
    const positions = shape[0]! * shape[1]! * shape[2]!;
    const x = tf.randomNormal(shape);
    const beta = tf.zeros([channels]);
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_RELU, { x, beta }, { epsilon: EPSILON }) as unknown as tf.Tensor[];
    const dy = tf.randomNormal(shape);
    let jsOut: tf.Tensor[] = [];
    const js = best(() => {
      tf.dispose(jsOut);
      jsOut = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, { dy, x, y: y!, mean: mean!, variance: variance! }, { epsilon: EPSILON }) as unknown as tf.Tensor[];
    });
    // The SIMD passes, with the per-channel algebra of fused-kernels.ts between them.
    const dx = tf.zeros(shape);
    const sums = tf.zeros([4 * channels]); // 2*C float64
    const coefficients = tf.zeros([3 * channels]);
    const means = mean!.dataSync();
    const variances = variance!.dataSync();
    const vector = (): number => best(() => {
      const sumView = new Float64Array(memory.view({ dataId: sums.dataId, shape: sums.shape, dtype: 'float32' }).buffer, offset(sums), 2 * channels);
      sumView.fill(0);
      simd.bnGradSums(offset(dy), offset(x), offset(y!), offset(sums), positions, channels);
      const coef = memory.view({ dataId: coefficients.dataId, shape: coefficients.shape, dtype: 'float32' });
      for (let c = 0; c < channels; c++) {
        const r = 1 / Math.sqrt(variances[c]! + EPSILON);
        const dot = r * (sumView[channels + c]! - means[c]! * sumView[c]!);
        coef[c] = r;
        coef[channels + c] = -r * r * dot / positions;
        coef[2 * channels + c] = -r * sumView[c]! / positions + means[c]! * r * r * dot / positions;
      }
      simd.bnGradDx(offset(dy), offset(x), offset(y!), offset(dx), offset(coefficients), positions, channels);
    });
    const simdMs = vector();
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(dx, jsOut[0]!))).dataSync()[0]! / Math.max(tf.max(tf.abs(jsOut[0]!)).dataSync()[0]!, 1e-30));
    console.log(`bn-simd size=${size} shape=${text} layers=${count} js_ms=${js.toFixed(2)} simd_ms=${simdMs.toFixed(2)} speedup=${(js / simdMs).toFixed(1)} dx_rel_diff=${diff.toExponential(1)}`);
    totalJs += js * count;
    totalSimd += simdMs * count;
    tf.dispose([x, beta, y!, mean!, variance!, dy, dx, sums, coefficients, ...jsOut]);
  }
  console.log(`bn-simd size=${size} batch=8 total_js_ms=${totalJs.toFixed(1)} total_simd_ms=${totalSimd.toFixed(1)} per step of BatchNormReluGrad`);
}

try {
  const args = minimist(process.argv.slice(2), { string: ['size'], unknown: rejectUnknown });
  await main(parseCount(args.size ?? '139', '--size', 75, 2048));
} catch (error) {
  process.stderr.write(`bn-simd FAILED: ${error instanceof BenchError ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
