// Pooling gradients as JavaScript loops over the memory of the wasm and cpu backends.
//
// AvgPoolGrad of a stride-1 'same' pool with an odd window (all of Inception's) on wasm is the
// forward pool of the scaled gradient: each input's windows are the windows around it, so
// dx = count * AvgPool(dy / count), with count the number of a window's values inside the input.
// XNNPACK's pool with two scaling passes takes 1.6 ms for 8x7x7x768 (139x139, batch 8), where the
// loop below takes 6.5.
//
// MaxPoolGrad: tfjs-backend-wasm's own kernel takes 62 ms for the gradient of Inception's first
// 3x3 stride-2 pool at 139x139, batch 8 (input 8x67x67x64), where the forward pool takes 2 ms;
// this one about 20. It finds in each
// window the first value equal to the pool's output: an equality is true about once a window,
// where a running argmax changes often enough that its mispredicted branches cost more.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { MEMORY_BACKENDS, runBackendKernel, tensorMemory, type TensorMemory } from './tensor-memory.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

/**
 * Calls `visit` once per pooling window, with the offset of its output values and the offsets of
 * its input pixels (`count` of them, row-major, clipped to the input: padding is never visited).
 */
function forEachWindow(info: PoolInfo, visit: (outBase: number, inBases: Int32Array, count: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const inBases = new Int32Array(filterHeight * filterWidth);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const top = oh * strideHeight - info.padInfo.top;
      const h0 = Math.max(top, 0);
      const h1 = Math.min(top + filterHeight, inHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const left = ow * strideWidth - info.padInfo.left;
        const w0 = Math.max(left, 0);
        const w1 = Math.min(left + filterWidth, inWidth);
        let count = 0;
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) inBases[count++] = ((b * inHeight + h) * inWidth + w) * channels;
        }
        visit(((b * outHeight + oh) * outWidth + ow) * channels, inBases, count);
      }
    }
  }
}

/**
 * dx[argmax of each window] += dy, the first maximum in row-major window order taking it, as
 * TensorFlow and tfjs's cpu kernel do. Windows are clipped to the input (padding never wins).
 * `output` must be the forward pool of `input`, as tfjs's MaxPool gradient passes it.
 */
function maxPoolGrad({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { dy, input, output } = inputs as { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const channels = info.inChannels;
  const memory = tensorMemory(backend, tf.getBackend());
  const dxInfo = memory.allocate(input.shape);
  const [xs, ys, dys, dx] = [input, output, dy, dxInfo].map((t) => memory.view(t)) as [Float32Array, Float32Array, Float32Array, Float32Array];
  dx.fill(0);
  // dy still to hand out per channel: set to 0 once the window's first maximum took it.
  const pending = new Float32Array(channels);
  forEachWindow(info, (outBase, inBases, count) => {
    pending.set(dys.subarray(outBase, outBase + channels));
    for (let i = 0; i < count; i++) {
      const base = inBases[i]!;
      for (let c = 0; c < channels; c++) {
        // A window of NaNs has no equal value and gets nothing, as in TensorFlow.
        if (xs[base + c] === ys[outBase + c]) {
          dx[base + c] += pending[c]!;
          pending[c] = 0;
        }
      }
    }
  });
  return dxInfo;
}

/**
 * dx += dy / count over each window, where count is the number of the window's values inside the
 * input: the gradient of tfjs's (and TensorFlow's) forward average pool, which leaves padding out
 * of the mean. tfjs's own AvgPoolGrad kernels divide by the whole window size instead, which
 * under 'same' padding makes the gradient at the borders too small (a corner of a 3x3 window:
 * 1/9 instead of 1/4); Inception's pooling branches are all 3x3 'same'.
 */
function avgPoolGrad({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad } = attrs as unknown as tf.AvgPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad);
  const channels = info.inChannels;
  const memory = tensorMemory(backend, tf.getBackend());
  if (tf.getBackend() === 'wasm' && isCentredStrideOne(info)) return avgPoolGradByPool(backend, memory, dy, info);
  const dxInfo = memory.allocate(input.shape);
  const [dys, dx] = [dy, dxInfo].map((t) => memory.view(t)) as [Float32Array, Float32Array];
  dx.fill(0);
  const share = new Float32Array(channels);
  forEachWindow(info, (outBase, inBases, count) => {
    for (let c = 0; c < channels; c++) share[c] = dys[outBase + c]! / count;
    for (let i = 0; i < count; i++) {
      const base = inBases[i]!;
      for (let c = 0; c < channels; c++) dx[base + c] += share[c]!;
    }
  });
  return dxInfo;
}

/** Stride 1, odd windows, padded by half a window on each side: the windows around an input are the ones it is in. */
function isCentredStrideOne(info: PoolInfo): boolean {
  const { strideHeight, strideWidth, filterHeight, filterWidth, padInfo, inHeight, inWidth, outHeight, outWidth } = info;
  return strideHeight === 1 && strideWidth === 1 && filterHeight % 2 === 1 && filterWidth % 2 === 1 &&
    padInfo.top === (filterHeight - 1) / 2 && padInfo.left === (filterWidth - 1) / 2 && outHeight === inHeight && outWidth === inWidth;
}

/** How many of the windows' rows (or columns) around each position lie inside the input. */
function countsAlong(length: number, filter: number): Float64Array {
  const half = (filter - 1) / 2;
  return Float64Array.from({ length }, (_, i) => Math.min(i + half, length - 1) - Math.max(i - half, 0) + 1);
}

/** Multiplies each pixel's channels of `values` (NHWC) by `factor(h, w)`, into `target`. */
function scalePixels(values: Float32Array, target: Float32Array, info: PoolInfo, factor: (h: number, w: number) => number): void {
  const { batchSize, inHeight, inWidth, inChannels: channels } = info;
  let base = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let h = 0; h < inHeight; h++) {
      for (let w = 0; w < inWidth; w++, base += channels) {
        const f = factor(h, w);
        for (let c = base; c < base + channels; c++) target[c] = values[c]! * f;
      }
    }
  }
}

/** dx = count * AvgPool(dy / count) on the wasm backend's own (XNNPACK) pool; see the file's comment. */
function avgPoolGradByPool(backend: tf.KernelBackend, memory: TensorMemory, dy: TensorInfo, info: PoolInfo): TensorInfo {
  const rows = countsAlong(info.inHeight, info.filterHeight);
  const cols = countsAlong(info.inWidth, info.filterWidth);
  const scaled = memory.allocate(dy.shape);
  scalePixels(memory.view(dy), memory.view(scaled), info, (h, w) => 1 / (rows[h]! * cols[w]!));
  const pooled = runBackendKernel(backend, 'wasm', 'AvgPool', { x: scaled }, {
    filterSize: [info.filterHeight, info.filterWidth], strides: [1, 1], pad: 'same', dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
  backend.disposeData(scaled.dataId);
  const dx = memory.view(pooled);
  scalePixels(dx, dx, info, (h, w) => rows[h]! * cols[w]!);
  return pooled;
}

/**
 * Replaces wasm's or cpu's MaxPoolGrad (slow) and AvgPoolGrad (wrong at borders) with the above.
 * Call it after the backend's package is imported: importing registers the package's own kernels
 * over these.
 */
export function registerPoolGradKernels(backendName: (typeof MEMORY_BACKENDS)[number]): void {
  const configs: KernelConfig[] = [
    { kernelName: tf.MaxPoolGrad, backendName, kernelFunc: maxPoolGrad as KernelConfig['kernelFunc'] },
    { kernelName: tf.AvgPoolGrad, backendName, kernelFunc: avgPoolGrad as KernelConfig['kernelFunc'] },
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, backendName)) tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(config);
  }
}
