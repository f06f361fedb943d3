// Convolution gradients as one GEMM over image columns (im2col), on XNNPACK as 1x1 convolutions.
//
// Filter gradients: dW [KH*KW*Ci, Co] = columns^T [KH*KW*Ci, P] x dy [P, Co], P = N*OH*OW: the
// inner dimension is long, dy is the "filter" as it is stored and dW comes out in its own layout.
// The dilation trick this replaced (dW = conv2d(x with batch and channels swapped, dy as a filter
// dilated by the stride)) sums only N = batch values per tap, and transposed x, dy and dW: at
// 139x139, batch 8, the 3x3 convolution 80->192 on 33x33 took 73 ms that way, 58 this way, and
// the filter gradients of a step 20% less in all (measured on a shared machine, minimum of 5).
//
// Input gradients on small maps, with the filter used as it is stored: columns^T [KH*KW*Ci, P] = W [KH*KW*Ci, Co] x dy^T [Co, P] (P = N*OH*OW),
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


/** Columns of one chunk: at most 16 Mi floats (64 MiB of heap). */
const CHUNK_VALUES = 1 << 24;


/**
 * dW [KH, KW, Ci, Co] = columns^T [KH*KW*Ci, P] x dy [P, Co]: the GEMM's inner dimension is the
 * P positions, dy is the filter as it is stored, and the result is dW in its own layout. Each row
 * of columns^T is one channel of x shifted by one tap, copied from x^T [Ci, N, H, W] a row of OW
 * values at a time; a few images at a time, their partial products added.
 */
export function columnFilterGradient(scope: KernelScope, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo, chunkValues = CHUNK_VALUES): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  const perImage = outHeight * outWidth;
  const rows = kh * kw * ci;
  const imagesPerChunk = Math.max(1, Math.min(batchSize, Math.floor(chunkValues / (rows * perImage))));
  const xT = scope.run('Transpose', { x }, { perm: [3, 0, 1, 2] });
  let sum: TensorInfo | undefined;
  for (let first = 0; first < batchSize; first += imagesPerChunk) {
    const mark = scope.mark();
    const end = Math.min(batchSize, first + imagesPerChunk);
    const positions = (end - first) * perImage;
    const columnsInfo = scope.allocate([rows, 1, 1, positions]);
    const source = scope.view(xT);
    const columns = scope.view(columnsInfo);
    const heap = new Float32Array(columns.buffer);
    const columnsAt = columns.byteOffset / 4;
    const sourceAt = source.byteOffset / 4;
    columns.fill(0);
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        // Output columns ow whose input column ow*sw + b - left is inside: [ow0, ow1).
        const ow0 = Math.min(outWidth, Math.max(0, Math.ceil((left - b) / sw)));
        const ow1 = Math.max(ow0, Math.min(outWidth, Math.floor((inWidth - 1 + left - b) / sw) + 1));
        for (let c = 0; c < ci; c++) {
          let to = ((a * kw + b) * ci + c) * positions;
          for (let n = first; n < end; n++) {
            for (let oh = 0; oh < outHeight; oh++, to += outWidth) {
              const h = oh * sh + a - top;
              if (h < 0 || h >= inHeight || ow1 === ow0) continue;
              const from = ((c * batchSize + n) * inHeight + h) * inWidth + ow0 * sw + b - left;
              if (sw === 1) {
                // Both on the one heap: a memmove, without making a subarray per run.
                heap.copyWithin(columnsAt + to + ow0, sourceAt + from, sourceAt + from + ow1 - ow0);
              } else {
                for (let ow = ow0, f = from; ow < ow1; ow++, f += sw) columns[to + ow] = source[f]!;
              }
            }
          }
        }
      }
    }
    const dyRows = scope.run('Reshape', { x: dy }, { shape: [batchSize * perImage, co] });
    const dyChunk = imagesPerChunk >= batchSize ? dyRows : scope.run('Slice', { x: dyRows }, { begin: [first * perImage, 0], size: [positions, co] });
    const filter = scope.run('Reshape', { x: dyChunk }, { shape: [1, 1, positions, co] });
    const partial = pointwise(scope, columnsInfo, filter);
    const next = sum ? scope.run('Add', { a: sum, b: partial }) : partial;
    scope.releaseSince(mark, next);
    if (sum) scope.free(sum);
    sum = next;
  }
  return scope.run('Reshape', { x: sum! }, { shape: [kh, kw, ci, co] });
}
