// Batch norm with its ReLU as kernels over the memory of the two backends that JavaScript can
// reach (wasm, cpu). The point is memory more than speed: a training step keeps every tensor its
// gradients need until the backward pass, and the tf-op composition keeps four activation-sized
// tensors per layer (centered, normalized, pre-ReLU, output) where these kernels keep x and y.
// Inception-V3 at 139x139, batch 8, on wasm: 1296 MiB of heap against 1008, and about 100 ms a
// step less (of 2.3 s).
//
//   BatchNormRelu:         y = max(0, (x - mean) / sqrt(variance + epsilon) + beta), with the
//                          batch's biased mean and variance over all axes but the last
//   BatchNormReluGrad:     dx and dbeta from dy, x, y and the statistics; 2 passes
//   BatchNormReluGradBeta: dbeta alone, the per-channel sum of dy where y > 0; 1 pass
//
// Sums are accumulated in float64. The loops have no data-dependent branches: ReLU outputs are
// about half zeros in no pattern, and a branch on them mispredicts so often that it made each pass
// 4-5 times slower (measured: 7.5 against 1.6 ns per value); the mask y > 0 is ceil(min(y, 1)),
// exact for y >= 0. Callers use these kernels only where `hasFusedKernels()` says the current
// backend has them, and otherwise compose tf ops.
//
// Replicas that share one batch (a rank's compute threads, each with a slice of the rank's batch)
// set a reducer: the per-channel sums are then those of the whole batch, in the forward pass (the
// statistics) and in the backward pass (sum(g) and sum(g * x) of dx), so that N threads with B/N
// images each compute what one thread computes with B, and the moving averages come out the same
// on every replica.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { MEMORY_BACKENDS, runBackendKernel, tensorMemory } from './tensor-memory.js';

export const BATCH_NORM_RELU = 'HpcTrainBatchNormRelu';
export const BATCH_NORM_RELU_GRAD = 'HpcTrainBatchNormReluGrad';
export const BATCH_NORM_RELU_GRAD_BETA = 'HpcTrainBatchNormReluGradBeta';

export interface BatchNormReluAttrs {
  epsilon: number;
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * Adds each of `parts` (per-channel float64 sums over this replica's `count` positions) over every
 * replica of the batch, in place and in the same order on every replica; returns the total count.
 */
export type BatchSumReducer = (parts: Float64Array[], count: number) => number;

let reduceBatchSums: BatchSumReducer | undefined;

/** Makes batch norm's sums those of every replica (undefined: of this one's batch alone). */
export function setBatchSumReducer(reducer: BatchSumReducer | undefined): void {
  reduceBatchSums = reducer;
}

function memoryOf(backend: tf.KernelBackend) {
  return tensorMemory(backend, tf.getBackend());
}

function channelsOf(x: TensorInfo): number {
  const channels = x.shape[x.shape.length - 1];
  if (channels === undefined || channels === 0) throw new Error(`batch norm needs a channel axis, got shape [${x.shape.join(', ')}]`);
  return channels;
}

/**
 * Outputs: y (x's shape), mean [C], variance [C] (biased, as tf.moments). The statistics are one
 * JavaScript pass; y = relu(x * scale + shift) is the backend's own Multiply, Add and Relu, which
 * on wasm run at about 1 ns per value together, against 3.5 for the same in JavaScript.
 */
function batchNormRelu({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, beta } = inputs as { x: TensorInfo; beta: TensorInfo };
  const { epsilon } = attrs as unknown as BatchNormReluAttrs;
  const memory = memoryOf(backend);
  const channels = channelsOf(x);
  const meanInfo = memory.allocate([channels]);
  const varianceInfo = memory.allocate([channels]);
  const scaleInfo = memory.allocate([channels]);
  const shiftInfo = memory.allocate([channels]);
  const [xs, betas, means, variances, scale, shift] = [x, beta, meanInfo, varianceInfo, scaleInfo, shiftInfo].map((info) => memory.view(info)) as Float32Array[];
  const sum = new Float64Array(channels);
  const squares = new Float64Array(channels);
  for (let base = 0; base < xs!.length; base += channels) {
    for (let c = 0; c < channels; c++) {
      const value = xs![base + c]!;
      sum[c] += value;
      squares[c] += value * value;
    }
  }
  const local = xs!.length / channels;
  const count = reduceBatchSums ? reduceBatchSums([sum, squares], local) : local;
  for (let c = 0; c < channels; c++) {
    const mean = sum[c]! / count;
    const variance = Math.max(squares[c]! / count - mean * mean, 0);
    const inverseStd = 1 / Math.sqrt(variance + epsilon);
    means![c] = mean;
    variances![c] = variance;
    scale![c] = inverseStd;
    shift![c] = betas![c]! - mean * inverseStd;
  }
  const scaled = runBackendKernel(backend, tf.getBackend(), 'Multiply', { a: x, b: scaleInfo });
  const shifted = runBackendKernel(backend, tf.getBackend(), 'Add', { a: scaled, b: shiftInfo });
  const y = runBackendKernel(backend, tf.getBackend(), 'Relu', { x: shifted });
  for (const info of [scaled, shifted, scaleInfo, shiftInfo]) backend.disposeData(info.dataId);
  return [y, meanInfo, varianceInfo];
}

/**
 * With g = dy where y > 0 (else 0), xhat = (x - mean) * r and r = 1 / sqrt(variance + epsilon):
 * dbeta = sum(g), dx = r * (g - sum(g) / n - xhat * sum(g * xhat) / n), which is linear in g and x
 * per channel, so the second pass is dx = g * a + x * b + c.
 */
function batchNormReluGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, x, y, mean, variance } = inputs as Record<'dy' | 'x' | 'y' | 'mean' | 'variance', TensorInfo>;
  const { epsilon } = attrs as unknown as BatchNormReluAttrs;
  const memory = memoryOf(backend);
  const channels = channelsOf(x);
  const dx = memory.allocate(x.shape);
  const dBeta = memory.allocate([channels]);
  const [dys, xs, ys, means, variances, dxs, dBetas] = [dy, x, y, mean, variance, dx, dBeta].map((info) => memory.view(info)) as Float32Array[];
  const sumG = new Float64Array(channels);
  const sumGx = new Float64Array(channels);
  for (let base = 0; base < xs!.length; base += channels) {
    for (let c = 0; c < channels; c++) {
      const g = dys![base + c]! * Math.ceil(Math.min(ys![base + c]!, 1));
      sumG[c] += g;
      sumGx[c] += g * xs![base + c]!;
    }
  }
  // dbeta is this replica's share (the replicas' parameter gradients are added later); dx needs the whole batch's sums.
  dBetas!.set(sumG);
  const local = xs!.length / channels;
  const count = reduceBatchSums ? reduceBatchSums([sumG, sumGx], local) : local;
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  const k = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const r = 1 / Math.sqrt(variances![c]! + epsilon);
    const m = means![c]!;
    // sum(g * xhat) = r * (sum(g * x) - mean * sum(g))
    const dot = r * (sumGx[c]! - m * sumG[c]!);
    a[c] = r;
    b[c] = -r * r * dot / count;
    k[c] = -r * sumG[c]! / count + m * r * r * dot / count;
  }
  for (let base = 0; base < xs!.length; base += channels) {
    for (let c = 0; c < channels; c++) {
      const g = dys![base + c]! * Math.ceil(Math.min(ys![base + c]!, 1));
      dxs![base + c] = g * a[c]! + xs![base + c]! * b[c]! + k[c]!;
    }
  }
  return [dx, dBeta];
}

/** dbeta = sum of dy where y > 0, per channel. */
function batchNormReluGradBeta({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, y } = inputs as Record<'dy' | 'y', TensorInfo>;
  const memory = memoryOf(backend);
  const channels = channelsOf(y);
  const dBeta = memory.allocate([channels]);
  const [dys, ys, dBetas] = [dy, y, dBeta].map((info) => memory.view(info)) as Float32Array[];
  const sum = new Float64Array(channels);
  for (let base = 0; base < ys!.length; base += channels) {
    for (let c = 0; c < channels; c++) sum[c] += dys![base + c]! * Math.ceil(Math.min(ys![base + c]!, 1));
  }
  dBetas!.set(sum);
  return dBeta;
}

const KERNELS: ReadonlyArray<[string, KernelFunc]> = [
  [BATCH_NORM_RELU, batchNormRelu as unknown as KernelFunc],
  [BATCH_NORM_RELU_GRAD, batchNormReluGrad as unknown as KernelFunc],
  [BATCH_NORM_RELU_GRAD_BETA, batchNormReluGradBeta as unknown as KernelFunc],
];

const BATCH_NORM_RELU_GRADIENT: GradConfig = {
  kernelName: BATCH_NORM_RELU,
  inputsToSave: ['x'],
  outputsToSave: [true, true, true],
  gradFunc: (dy, saved, attrs) => {
    const [x, y, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    // Only y is differentiated; the statistics feed the moving averages, outside the loss.
    const dyOfY = Array.isArray(dy) ? dy[0]! : dy;
    // The engine calls each closure in its own tidy (x's first), so a tensor cannot pass from one
    // to the other; dbeta, a by-product of dx, passes as plain values instead. Without x's closure
    // (nothing before the layer trains), beta's computes dbeta on its own.
    let dBetaValues: Float32Array | undefined;
    return {
      x: () => {
        const [dx, dBeta] = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, { dy: dyOfY, x, y, mean, variance }, attrs as NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor];
        dBetaValues = dBeta.dataSync() as Float32Array;
        return dx;
      },
      beta: () => dBetaValues
        ? tf.tensor1d(dBetaValues)
        : tf.engine().runKernel(BATCH_NORM_RELU_GRAD_BETA, { dy: dyOfY, y }) as tf.Tensor,
    };
  },
};

/** Registers the kernels for wasm and cpu, and BatchNormRelu's gradient. Idempotent. */
export function registerFusedKernels(): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    for (const backendName of MEMORY_BACKENDS) {
      if (tf.getKernel(kernelName, backendName)) continue;
      tf.registerKernel({ kernelName, backendName, kernelFunc } satisfies KernelConfig);
    }
  }
  if (!tf.getGradient(BATCH_NORM_RELU)) tf.registerGradient(BATCH_NORM_RELU_GRADIENT);
}

/** Whether the current backend runs the kernels above (registering them if need be). */
export function hasFusedKernels(): boolean {
  registerFusedKernels();
  return tf.getKernel(BATCH_NORM_RELU, tf.getBackend()) !== undefined;
}
