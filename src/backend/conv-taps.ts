// Convolutions without the filter taps that only ever see padding. On a map smaller than the
// kernel's reach some taps never meet an input value: a 3x3 'same' convolution of a 1x1 map uses
// its centre tap only, a 1x7 one of a 3-wide map 5 of its 7. Inception-V3 at 75x75 has its last
// two blocks on 1x1 maps and the 17x17 blocks on 3x3 ones; XNNPACK multiplies the padding all the
// same (at 75x75, batch 8: mixed9 and mixed10's 3x3, 1x3 and 3x1 convolutions took 33 ms of the
// forward pass). The convolution with the used taps only and its padding cut to match gives the
// same output; the filter gradient of the unused taps is exactly zero.
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Conv2DInfo } from './conv-columns.js';
import type { KernelScope } from './kernel-scope.js';

export type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/** The used taps [begin, end) along one axis, and the padding that keeps the output's size. */
interface AxisTrim {
  begin: number;
  end: number;
  before: number;
  after: number;
}

export interface TapTrim {
  /** Slice of the filter [KH, KW, Ci, Co] that keeps the used taps. */
  begin: [number, number, number, number];
  size: [number, number, number, number];
  pad: ExplicitPadding;
}

function trimAxis(pad: number, kernel: number, stride: number, inLength: number, outLength: number): AxisTrim | undefined {
  // Tap a meets row oh * stride + a - pad, inside [0, inLength) for some oh in [0, outLength).
  const begin = Math.max(0, pad - (outLength - 1) * stride);
  const end = Math.min(kernel, pad + inLength);
  if (end <= begin) return undefined;
  const before = pad - begin;
  const after = (outLength - 1) * stride + (end - begin) - inLength - before;
  return after < 0 ? undefined : { begin, end, before, after };
}

/** The trim of a convolution (dilation 1) whose filter has taps that never meet the input, or undefined. */
export function tapTrim(info: Conv2DInfo): TapTrim | undefined {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const rows = trimAxis(info.padInfo.top, info.filterHeight, info.strideHeight, info.inHeight, info.outHeight);
  const cols = trimAxis(info.padInfo.left, info.filterWidth, info.strideWidth, info.inWidth, info.outWidth);
  if (!rows || !cols) return undefined;
  if (rows.end - rows.begin === info.filterHeight && cols.end - cols.begin === info.filterWidth) return undefined;
  return {
    begin: [rows.begin, cols.begin, 0, 0],
    size: [rows.end - rows.begin, cols.end - cols.begin, info.inChannels, info.outChannels],
    pad: [[0, 0], [rows.before, rows.after], [cols.before, cols.after], [0, 0]],
  };
}

/** The same convolution's description with the trimmed filter and padding. */
export function trimmedInfo(info: Conv2DInfo, trim: TapTrim): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    [info.batchSize, info.inHeight, info.inWidth, info.inChannels], trim.size,
    [info.strideHeight, info.strideWidth], 1, trim.pad, undefined, false, 'channelsLast',
  );
}

/** The full filter's gradient [KH, KW, Ci, Co] from the trimmed one's: zero at the unused taps. */
export function untrimFilterGradient(scope: KernelScope, trimmed: TensorInfo, trim: TapTrim, filterShape: number[]): TensorInfo {
  const [, kw, ci, co] = filterShape as [number, number, number, number];
  const output = scope.allocate(filterShape);
  const target = scope.view(output);
  const source = scope.view(trimmed);
  target.fill(0);
  const block = ci * co;
  const [a0, b0] = trim.begin;
  const [th, tw] = trim.size;
  for (let a = 0; a < th; a++) {
    for (let b = 0; b < tw; b++) {
      const from = (a * tw + b) * block;
      target.set(source.subarray(from, from + block), ((a + a0) * kw + b + b0) * block);
    }
  }
  return output;
}
