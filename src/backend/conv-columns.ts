// Convolutions as one matrix product over image columns (im2col), on XNNPACK's fully-connected
// operator (KernelScope.matMul), with the filter (or dy) used as it is stored. P = N*OH*OW.
//
// Filter gradients: dW [KH*KW*Ci, Co] = columns^T [KH*KW*Ci, P] x dy [P, Co]. The inner
// dimension is long, dy is the right side as it is stored, and dW comes out in its own layout.
// The dilation trick this replaced (dW = conv2d(x with batch and channels swapped, dy as a filter
// dilated by the stride)) summed only N = batch values per tap, and transposed x, dy and dW: at
// 139x139, batch 8, the 3x3 convolution 80->192 on 33x33 took 73 ms that way, 58 this way, and
// the filter gradients of a step's shapes 20% less in all (shared machine, minimum of 5).
//
// Input gradients on small maps: columns^T [KH*KW*Ci, P] = W [KH*KW*Ci, Co] x dy^T [Co, P], then
// each position's values added into dx at its window (col2im). The other input gradients
// (wasm-grad-kernels.ts) move the filter first, flipped or transposed, and tfjs and XNNPACK move
// it twice more: three passes over KH*KW*Ci*Co values, where this moves dy and the columns
// (P*Co, KH*KW*Ci*P). On Inception's last maps (75 and 139 px, batch 8: P = 8 and 72) the filter
// is the larger by far: mixed9's 1x1 convolution 2048 -> 448 at 139 px took 19.4 ms, now 4.0.
//
// Forward convolutions on maps of fewer positions than output channels: y = columns [P, KH*KW*Ci]
// x W [KH*KW*Ci, Co] (see wasm-conv2d.ts).
import type * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelScope } from './kernel-scope.js';

export type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

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
  const columnsT = scope.matMul(filter, transpose2d(scope, dy, positions, co), window, co, positions);
  // Back to a row of KH*KW*Ci values per position, so that the scatter adds runs of Ci in order.
  const columnsInfo = transpose2d(scope, columnsT, window, positions);
  const { top, left } = info.padInfo;
  // A 1x1 convolution at stride 1 without padding: each position's column is its pixel of dx.
  if (window === ci && sh === 1 && sw === 1 && top === 0 && left === 0 && positions === batchSize * inHeight * inWidth) {
    return scope.run('Reshape', { x: columnsInfo }, { shape: [batchSize, inHeight, inWidth, ci] });
  }
  const dxInfo = scope.allocate([batchSize, inHeight, inWidth, ci]);
  const columns = scope.view(columnsInfo);
  const dx = scope.view(dxInfo);
  dx.fill(0);
  let from = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        for (let a = 0; a < kh; a++) {
          const h = oh * sh + a - top;
          for (let b = 0; b < kw; b++, from += ci) {
            const w = ow * sw + b - left;
            if (h < 0 || h >= inHeight || w < 0 || w >= inWidth) continue;
            const to = ((n * inHeight + h) * inWidth + w) * ci;
            for (let c = 0; c < ci; c++) dx[to + c] += columns[from + c]!;
          }
        }
      }
    }
  }
  return dxInfo;
}


/** Columns of one chunk: at most 16 Mi floats (64 MiB of heap). */
const CHUNK_VALUES = 1 << 24;

/**
 * Positions of one chunk, at most (unless one image has more): XNNPACK's fully-connected operator
 * does not block its inner dimension, and a few rows of columns^T longer than this leave the
 * cache between uses. 8x147x147x32 -> 3x3x64 (299 px): 312 ms in chunks of 3 images, 213 one
 * image at a time; 8x67x67x32 (139 px) 41 ms whole, 38 one image at a time.
 */
const CHUNK_POSITIONS = 8192;

/** Runs of at least this many values are moved with copyWithin or fill; shorter ones in a loop. */
const LONG_RUN = 16;


/** target[from, to) = 0, in a loop below a few values (fill's call costs more there). */
function zero(target: Float32Array, from: number, to: number): void {
  if (to - from >= LONG_RUN) target.fill(0, from, to);
  else for (let i = from; i < to; i++) target[i] = 0;
}

/** heap[to, to + length) = heap[from, from + length), in a loop below a few values. */
function move(heap: Float32Array, to: number, from: number, length: number): void {
  if (length >= LONG_RUN) heap.copyWithin(to, from, from + length);
  else for (let i = 0; i < length; i++) heap[to + i] = heap[from + i]!;
}

/**
 * columns^T [KH*KW*Ci, P] of the images first..end-1 from x^T [Ci, N, H, W]: row (a, b, c) is
 * channel c shifted by tap (a, b), zero where the tap is in the padding. Every value is written
 * (the heap is not zeroed). Stride 1 with the output as wide as the input ('same'): each image's
 * rows of a channel are one block moved at once, the values that wrapped around a row's end
 * zeroed after; otherwise row by row.
 */
function fillColumns(source: Float32Array, columns: Float32Array, info: Conv2DInfo, first: number, end: number): void {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  const positions = (end - first) * outHeight * outWidth;
  // Both views are of the one heap: moves within it need no subarray per run.
  const heap = new Float32Array(columns.buffer);
  const columnsAt = columns.byteOffset / 4;
  const sourceAt = source.byteOffset / 4;
  const sameWidth = sw === 1 && sh === 1 && inWidth === outWidth;
  for (let a = 0; a < kh; a++) {
    // Output rows whose input row oh*sh + a - top is inside: [oh0, oh1).
    const oh0 = Math.min(outHeight, Math.max(0, Math.ceil((top - a) / sh)));
    const oh1 = Math.max(oh0, Math.min(outHeight, Math.floor((inHeight - 1 + top - a) / sh) + 1));
    for (let b = 0; b < kw; b++) {
      // Output columns whose input column ow*sw + b - left is inside: [ow0, ow1).
      const ow0 = Math.min(outWidth, Math.max(0, Math.ceil((left - b) / sw)));
      const ow1 = Math.max(ow0, Math.min(outWidth, Math.floor((inWidth - 1 + left - b) / sw) + 1));
      const shift = b - left;
      for (let c = 0; c < ci; c++) {
        for (let n = first; n < end; n++) {
          const to = ((a * kw + b) * ci + c) * positions + (n - first) * outHeight * outWidth;
          zero(columns, to, to + oh0 * outWidth);
          zero(columns, to + oh1 * outWidth, to + outHeight * outWidth);
          if (oh1 === oh0) continue;
          const rowStart = ((c * batchSize + n) * inHeight + oh0 * sh + a - top) * inWidth;
          if (sameWidth && ow1 > ow0) {
            const block = to + oh0 * outWidth;
            const length = (oh1 - oh0) * outWidth;
            if (shift >= 0) {
              move(heap, columnsAt + block, sourceAt + rowStart + shift, length - shift);
              for (let r = block + outWidth; r <= block + length; r += outWidth) zero(columns, r - shift, r);
            } else {
              move(heap, columnsAt + block - shift, sourceAt + rowStart, length + shift);
              for (let r = block; r < block + length; r += outWidth) zero(columns, r, r - shift);
            }
            continue;
          }
          for (let oh = oh0, row = to + oh0 * outWidth, from = rowStart; oh < oh1; oh++, row += outWidth, from += sh * inWidth) {
            zero(columns, row, row + ow0);
            zero(columns, row + ow1, row + outWidth);
            const start = from + ow0 * sw + shift;
            if (sw === 1) move(heap, columnsAt + row + ow0, sourceAt + start, ow1 - ow0);
            else for (let ow = ow0, f = start; ow < ow1; ow++, f += sw) columns[row + ow] = source[f]!;
          }
        }
      }
    }
  }
}

/**
 * dW [KH, KW, Ci, Co] = columns^T [KH*KW*Ci, P] x dy [P, Co]: the GEMM's inner dimension is the
 * P positions, dy is the filter as it is stored, and the result is dW in its own layout. Each row
 * of columns^T is one channel of x shifted by one tap (fillColumns); a few images at a time, their
 * partial products added.
 */
export function columnFilterGradient(scope: KernelScope, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo, chunkValues = CHUNK_VALUES): TensorInfo {
  const { batchSize, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: kh, filterWidth: kw } = info;
  const perImage = outHeight * outWidth;
  const rows = kh * kw * ci;
  const imagesPerChunk = Math.max(1, Math.min(batchSize, Math.floor(CHUNK_POSITIONS / perImage), Math.floor(chunkValues / (rows * perImage))));
  const xT = scope.run('Transpose', { x }, { perm: [3, 0, 1, 2] });
  let sum: TensorInfo | undefined;
  for (let first = 0; first < batchSize; first += imagesPerChunk) {
    const mark = scope.mark();
    const end = Math.min(batchSize, first + imagesPerChunk);
    const positions = (end - first) * perImage;
    const columnsInfo = scope.allocate([rows, positions]);
    fillColumns(scope.view(xT), scope.view(columnsInfo), info, first, end);
    const dyRows = scope.run('Reshape', { x: dy }, { shape: [batchSize * perImage, co] });
    const dyChunk = imagesPerChunk >= batchSize ? dyRows : scope.run('Slice', { x: dyRows }, { begin: [first * perImage, 0], size: [positions, co] });
    const partial = scope.matMul(columnsInfo, dyChunk, rows, positions, co);
    const next = sum ? scope.run('Add', { a: sum, b: partial }) : partial;
    scope.releaseSince(mark, next);
    if (sum) scope.free(sum);
    sum = next;
  }
  return scope.run('Reshape', { x: sum! }, { shape: [kh, kw, ci, co] });
}

/**
 * y [N*OH*OW, Co] = columns [P, KH*KW*Ci] x W [KH*KW*Ci, Co], the forward convolution with the
 * filter as it is stored, for maps with fewer positions than output channels: there the filter's
 * transposed copy in tfjs's Conv2D (see wasm-conv2d.ts) costs more than making the columns.
 */
export function columnConv2D(scope: KernelScope, x: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  const positions = batchSize * outHeight * outWidth;
  const window = kh * kw * ci;
  const columnsInfo = scope.allocate([positions, window]);
  const source = scope.view(x);
  const columns = scope.view(columnsInfo);
  const heap = new Float32Array(columns.buffer);
  const columnsAt = columns.byteOffset / 4;
  const sourceAt = source.byteOffset / 4;
  let to = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        for (let a = 0; a < kh; a++) {
          const h = oh * sh + a - top;
          for (let b = 0; b < kw; b++, to += ci) {
            const w = ow * sw + b - left;
            if (h < 0 || h >= inHeight || w < 0 || w >= inWidth) zero(columns, to, to + ci);
            else move(heap, columnsAt + to, sourceAt + ((n * inHeight + h) * inWidth + w) * ci, ci);
          }
        }
      }
    }
  }
  return scope.run('Reshape', { x: scope.matMul(columnsInfo, filter, positions, window, co) }, { shape: info.outShape });
}
