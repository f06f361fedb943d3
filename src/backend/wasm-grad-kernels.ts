// Convolution gradients for the wasm backend, written as XNNPACK's forward convolutions and matrix
// products (its fast kernels). tfjs-backend-wasm has no Conv2DBackpropFilter at all, and its
// Conv2DBackpropInput is a direct loop about ten times slower than its conv2d (measured: 1.5-2.3
// against 14-33 GFLOP/s on Inception's shapes), so a training step needs both.
//
//   filter gradient: dW = columns^T dy, one GEMM over the N*OH*OW positions with dy as the
//                    filter (conv-columns.ts)
//                    1x1, stride 1: dW = x^T dy, the same GEMM without columns to make
//   input gradient:  small maps, any stride: one GEMM with the filter as it is stored and a
//                    scatter (conv-columns.ts)
//                    stride 1: dx = conv2d(dy, W flipped in space with in/out channels swapped,
//                    padding K-1-pad)
//                    1x1, stride 1: dx = dy W^T, a matrix product
//                    stride > 1: columns = dy [N*OH*OW, Co] x W^T [Co, KH*KW*Ci], each column
//                    added back into dx at its window (col2im); 2-4 times faster on Inception's
//                    strided shapes than spreading dy with zeros, or than one convolution per
//                    stride phase (8x35x35x288 <- 3x3/2 x 384: 141 against 533 and 257 ms)
//
// Both, and wasm's forward Conv2D, leave out the filter taps that only ever meet padding
// (conv-taps.ts).
//
// Kernels call other wasm kernels' functions directly (as tfjs's own kernels do), and free every
// intermediate they make.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { columnFilterGradient, prefersTransposedColumns, transposedColumnInputGradient, type Conv2DInfo } from './conv-columns.js';
import { tapTrim, trimmedInfo, untrimFilterGradient } from './conv-taps.js';
import { KernelScope } from './kernel-scope.js';
import { registerWasmConv2D } from './wasm-conv2d.js';
import { registerWasmMatMulKernel } from './wasm-matmul.js';
import { registerWasmSliceKernels } from './wasm-slice.js';

type Padding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * W[kh, kw, ci, co] -> W[KH-1-kh, KW-1-kw, co, ci] in one pass over the wasm heap. tfjs's wasm
 * Reverse kernel takes 46 ms for a 3x3x448x384 filter (the copy below takes a few), and every
 * input gradient needs one.
 */
function flipFilter(scope: KernelScope, filter: TensorInfo): TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const output = scope.allocate([kh, kw, co, ci]);
  // Views are taken after the allocation: a growing heap detaches earlier ones.
  const source = scope.view(filter);
  const target = scope.view(output);
  const block = ci * co;
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      const from = (h * kw + w) * block;
      const to = ((kh - 1 - h) * kw + (kw - 1 - w)) * block;
      for (let i = 0; i < ci; i++) {
        const row = from + i * co;
        for (let o = 0; o < co; o++) target[to + o * ci + i] = source[row + o]!;
      }
    }
  }
  return output;
}

function conv2d(scope: KernelScope, x: TensorInfo, filter: TensorInfo, pad: Padding): TensorInfo {
  return scope.run('Conv2D', { x, filter }, {
    strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
}

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap): Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NHWC') throw new Error(`wasm convolution gradients support NHWC only, not ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, 'channelsLast',
  );
}

/** dW[kh,kw,ci,co] = sum over n,oh,ow of x[n, oh*s+kh-top, ow*s+kw-left, ci] * dy[n,oh,ow,co]. */
function conv2DBackpropFilter({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = convInfo(x.shape, filterShape, attrs!);
  const scope = new KernelScope(backend);
  const trim = tapTrim(info);
  if (!trim) return scope.finish(filterGradient(scope, x, dy, info));
  return scope.finish(untrimFilterGradient(scope, filterGradient(scope, x, dy, trimmedInfo(info, trim)), trim, filterShape));
}

function filterGradient(scope: KernelScope, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  if (info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1) return pointwiseFilterGradient(scope, x, dy);
  return columnFilterGradient(scope, x, dy, info);
}

/** dW = x^T dy for a 1x1 convolution with stride 1, over all N*H*W positions at once. */
function pointwiseFilterGradient(scope: KernelScope, x: TensorInfo, dy: TensorInfo): TensorInfo {
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const co = dy.shape[3]!;
  const positions = n * h * w;
  const rows = scope.run('Reshape', { x }, { shape: [positions, ci] });
  const transposed = scope.run('Transpose', { x: rows }, { perm: [1, 0] });
  return scope.run('Reshape', { x: scope.matMul(transposed, dy, ci, positions, co) }, { shape: [1, 1, ci, co] });
}

/** dx: a forward convolution of dy with the flipped filter for stride 1, a GEMM and a scatter for larger strides. */
function conv2DBackpropInput({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { dy } = inputs as { dy: TensorInfo };
  let { filter } = inputs as { filter: TensorInfo };
  const inputShape = (attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape;
  const scope = new KernelScope(backend);
  let info = convInfo(inputShape, filter.shape, attrs!);
  const trim = tapTrim(info);
  if (trim) {
    filter = scope.run('Slice', { x: filter }, { begin: trim.begin, size: trim.size });
    info = trimmedInfo(info, trim);
  }
  if (prefersTransposedColumns(info)) return scope.finish(transposedColumnInputGradient(scope, dy, filter, info));
  if (info.strideHeight === 1 && info.strideWidth === 1) return scope.finish(flippedGradient(scope, dy, filter, info));
  return scope.finish(columnGradient(scope, dy, filter, info));
}

/**
 * The strided input gradient as a GEMM and a scatter ("col2im"): columns = dy [N*OH*OW, Co] times
 * W^T [Co, KH*KW*Ci], one matrix product on XNNPACK; then each column's KH*KW*Ci values are
 * added into dx at the window they came from. No multiplication by a zero, unlike spreading dy.
 */
function columnGradient(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const positions = batchSize * outHeight * outWidth;
  const windowSize = kh * kw * ci;
  const filterT = scope.run('Transpose', { x: filter }, { perm: [3, 0, 1, 2] });
  const columnsInfo = scope.matMul(dy, filterT, positions, co, windowSize);
  const dxInfo = scope.allocate([batchSize, inHeight, inWidth, ci]);
  const columns = scope.view(columnsInfo);
  const dx = scope.view(dxInfo);
  dx.fill(0);
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const column = ((n * outHeight + oh) * outWidth + ow) * windowSize;
        for (let a = 0; a < kh; a++) {
          const h = oh * sh + a - top;
          if (h < 0 || h >= inHeight) continue;
          for (let b = 0; b < kw; b++) {
            const w = ow * sw + b - left;
            if (w < 0 || w >= inWidth) continue;
            const from = column + (a * kw + b) * ci;
            const to = ((n * inHeight + h) * inWidth + w) * ci;
            for (let c = 0; c < ci; c++) dx[to + c] += columns[from + c]!;
          }
        }
      }
    }
  }
  return dxInfo;
}

/**
 * dx for stride 1: dy convolved with the filter flipped in space and with in/out channels swapped,
 * padded by K-1-pad before and so that dx has the input's size after. Where that padding is
 * negative (valid convolutions whose last rows the forward pass never read), dy is cut instead.
 */
function flippedGradient(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inHeight, inWidth, outHeight, outWidth } = info;
  const rows = flippedPadding(info.padInfo.top, kh, outHeight, inHeight);
  const cols = flippedPadding(info.padInfo.left, kw, outWidth, inWidth);
  const [n, , , c] = dy.shape as [number, number, number, number];
  const cutTop = Math.max(-rows.before, 0);
  const cutLeft = Math.max(-cols.before, 0);
  const keepRows = outHeight - cutTop + Math.min(rows.after, 0);
  const keepCols = outWidth - cutLeft + Math.min(cols.after, 0);
  const source = cutTop || cutLeft || keepRows < outHeight || keepCols < outWidth
    ? scope.run('Slice', { x: dy }, { begin: [0, cutTop, cutLeft, 0], size: [n, keepRows, keepCols, c] })
    : dy;
  if (kh === 1 && kw === 1 && source === dy) {
    // dx = dy W^T: a matrix product, whose right side XNNPACK packs as it is (see KernelScope.matMul).
    const [ci, co] = [info.inChannels, info.outChannels];
    return scope.run('Reshape', { x: scope.matMul(dy, flipFilter(scope, filter), n * outHeight * outWidth, co, ci) }, { shape: [n, inHeight, inWidth, ci] });
  }
  const pad: Padding = [[0, 0], [Math.max(rows.before, 0), Math.max(rows.after, 0)], [Math.max(cols.before, 0), Math.max(cols.after, 0)], [0, 0]];
  return conv2d(scope, source, flipFilter(scope, filter), pad);
}

/** Along one axis: dy rows (or columns) to add before and after (negative: to drop). */
function flippedPadding(pad: number, kernel: number, dyLength: number, inputLength: number): { before: number; after: number } {
  const before = kernel - 1 - pad;
  return { before, after: inputLength + kernel - 1 - dyLength - before };
}

/**
 * Identity without a copy: the output shares the input's memory, counted by reference, as the cpu
 * backend's Identity and the wasm backend's own Reshape do (tfjs tensors are never written in
 * place). tfjs saves every tensor a gradient needs through Identity, so wasm's copying Identity
 * doubled the activations a training step holds and spent about 60 ms a step at 139x139, batch 8,
 * copying them.
 */
function sharedIdentity({ inputs, backend }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend }): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') throw new Error('wasm Identity: string tensors are not supported');
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const WASM_GRAD_KERNELS: readonly KernelConfig[] = [
  { kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharedIdentity as KernelConfig['kernelFunc'] },
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2DBackpropFilter as KernelConfig['kernelFunc'] },
  { kernelName: tf.Conv2DBackpropInput, backendName: 'wasm', kernelFunc: conv2DBackpropInput as KernelConfig['kernelFunc'] },
];

/**
 * Registers (or replaces) the kernels above on the wasm backend, and the other kernels of
 * src/backend that a training step on wasm needs (Slice, SplitV, BatchMatMul, Conv2D). Idempotent.
 */
export function registerWasmGradKernels(): void {
  for (const config of WASM_GRAD_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registerWasmSliceKernels();
  registerWasmMatMulKernel();
  registerWasmConv2D();
}
