// Pooling gradients as JavaScript loops over the memory of the wasm and cpu backends.
//
// MaxPoolGrad: tfjs-backend-wasm's own kernel takes 62 ms for the gradient of Inception's first
// 3x3 stride-2 pool at 139x139, batch 8 (input 8x67x67x64), where the forward pool takes 2 ms;
// this one about 20. It finds in each
// window the first value equal to the pool's output: an equality is true about once a window,
// where a running argmax changes often enough that its mispredicted branches cost more.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { MEMORY_BACKENDS, tensorMemory } from './tensor-memory.js';

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
