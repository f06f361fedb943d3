// The input gradient of a convolution on a small map as one GEMM and a scatter, with the filter
// used as it is stored: columns^T [KH*KW*Ci, P] = W [KH*KW*Ci, Co] x dy^T [Co, P] (P = N*OH*OW),
// a 1x1 convolution on XNNPACK whose "image" is the filter, then each column's values added into
// dx at its window (col2im). The other input gradients (wasm-grad-kernels.ts) move the filter
// first, flipped or transposed, and XNNPACK packs it: three passes over KH*KW*Ci*Co values, where
// this moves dy (P*Co) and scatters the columns (KH*KW*Ci*P). On Inception's 3x3 and 1x1 maps
// (75x75 and 139x139 inputs, batch 8: P = 8 and 72) the filter is the larger by far: mixed9's
// 1x1 convolution from 2048 channels to 448 at 139x139 took 19.4 ms, now 4.0.
import type * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelScope } from './kernel-scope.js';

export type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

const NO_PADDING = [[0, 0], [0, 0], [0, 0], [0, 0]];

function pointwise(scope: KernelScope, x: TensorInfo, filter: TensorInfo): TensorInfo {
  return scope.run('Conv2D', { x, filter }, {
    strides: [1, 1], pad: NO_PADDING, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
}

/** rows [p, q] -> [q, p] on the wasm backend. */
function transpose2d(scope: KernelScope, x: TensorInfo, rows: number, cols: number): TensorInfo {
  return scope.run('Transpose', { x: scope.run('Reshape', { x }, { shape: [rows, cols] }) }, { perm: [1, 0] });
}

/**
 * Whether the GEMM above moves fewer values than moving the filter would: P * (Co + KH*KW*Ci) (dy's
 * transpose, the scatter; each counted twice, a read and a write at scattered places) against three
 * passes over the filter.
 */
export function prefersTransposedColumns(info: Conv2DInfo): boolean {
  const { batchSize, outHeight, outWidth, inChannels: ci, outChannels: co, filterHeight: kh, filterWidth: kw } = info;
  const positions = batchSize * outHeight * outWidth;
  return 2 * positions * (co + kh * kw * ci) < 3 * kh * kw * ci * co;
}

/** dx as W x dy^T and a scatter of the columns into their windows; see the file's comment. */
export function transposedColumnInputGradient(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const positions = batchSize * outHeight * outWidth;
  const window = kh * kw * ci;
  const dyT = scope.run('Reshape', { x: transpose2d(scope, dy, positions, co) }, { shape: [1, 1, co, positions] });
  const rows = scope.run('Reshape', { x: filter }, { shape: [window, 1, 1, co] });
  const columnsInfo = pointwise(scope, rows, dyT);
  const dxInfo = scope.allocate([batchSize, inHeight, inWidth, ci]);
  const columns = scope.view(columnsInfo);
  const dx = scope.view(dxInfo);
  dx.fill(0);
  const { top, left } = info.padInfo;
  // Where each position's window starts in dx, as a pixel offset, and its top-left corner.
  const origin = new Int32Array(positions);
  const rowOf = new Int32Array(positions);
  const colOf = new Int32Array(positions);
  for (let n = 0, p = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++, p++) {
        rowOf[p] = oh * sh - top;
        colOf[p] = ow * sw - left;
        origin[p] = (n * inHeight + rowOf[p]!) * inWidth + colOf[p]!;
      }
    }
  }
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const tap = a * inWidth + b;
      for (let p = 0; p < positions; p++) {
        const h = rowOf[p]! + a;
        const w = colOf[p]! + b;
        if (h < 0 || h >= inHeight || w < 0 || w >= inWidth) continue;
        const to = (origin[p]! + tap) * ci;
        let from = ((a * kw + b) * ci) * positions + p;
        for (let c = 0; c < ci; c++, from += positions) dx[to + c] += columns[from]!;
      }
    }
  }
  return dxInfo;
}

