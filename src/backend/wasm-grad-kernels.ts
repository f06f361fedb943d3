// Convolution gradients for the wasm backend, written as forward convolutions so that they run
// on XNNPACK's fast conv2d. tfjs-backend-wasm has no Conv2DBackpropFilter at all, and its
// Conv2DBackpropInput is a direct loop about ten times slower than its conv2d (measured: 1.5-2.3
// against 14-33 GFLOP/s on Inception's shapes), so a training step needs both.
//
//   filter gradient: dW = conv2d(x with batch and channels swapped, dy as the filter,
//                    dilation = the forward stride)                      -> [Ci, KH, KW, Co]
//                    1x1, stride 1: dW = x^T dy as a 1x1 conv2d of x^T [Ci, 1, 1, N*H*W] with dy
//                    [1, 1, N*H*W, Co] as the filter, a plain GEMM (2-3 times faster: the
//                    general form sums N = batch-size channels per filter tap)
//   input gradient:  dx = conv2d(dy, W flipped in space with in/out channels swapped,
//                    padding K-1-pad); with stride s, one such convolution per output phase
//                    (s*s of them, each with every s-th filter tap), interleaved
//
// Kernels call other wasm kernels' functions directly (as tfjs's own kernels do), and free every
// intermediate they make.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** The parts of tfjs-backend-wasm's BackendWasm that give direct access to its heap. */
interface WasmHeap {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}
type Padding = [[number, number], [number, number], [number, number], [number, number]];

/** Runs wasm kernels by name and remembers their outputs, to free all but the result at the end. */
class KernelScope {
  private readonly made: TensorInfo[] = [];
  constructor(private readonly backend: tf.KernelBackend) {}

  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`wasm kernel ${name} is not registered; is @tensorflow/tfjs-backend-wasm loaded?`);
    const output = kernel.kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo;
    this.made.push(output);
    return output;
  }

  /**
   * W[kh, kw, ci, co] -> W[KH-1-kh, KW-1-kw, co, ci] in one pass over the wasm heap. tfjs's wasm
   * Reverse kernel takes 46 ms for a 3x3x448x384 filter (the copy below takes a few), and every
   * input gradient needs one.
   */
  flipFilter(filter: TensorInfo): TensorInfo {
    const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
    const heap = this.backend as unknown as WasmHeap;
    const output = heap.makeOutput([kh, kw, co, ci], 'float32');
    this.made.push(output);
    // Views are taken after the allocation: a growing heap detaches earlier ones.
    const source = heap.typedArrayFromHeap(filter) as Float32Array;
    const target = heap.typedArrayFromHeap(output) as Float32Array;
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

  /** Frees every intermediate except `result`, which becomes the kernel's output. */
  finish(result: TensorInfo): TensorInfo {
    for (const info of this.made) if (info !== result) this.backend.disposeData(info.dataId);
    return result;
  }
}

function conv2d(scope: KernelScope, x: TensorInfo, filter: TensorInfo, dilation: number, pad: Padding): TensorInfo {
  return scope.run('Conv2D', { x, filter }, {
    strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [dilation, dilation], dimRoundingMode: undefined,
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
  const info = convInfo(x.shape, (attrs as unknown as tf.Conv2DBackpropFilterAttrs).filterShape, attrs!);
  const scope = new KernelScope(backend);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight, outWidth, inHeight, inWidth } = info;
  if (sh !== sw) throw new Error(`wasm Conv2DBackpropFilter needs equal strides, got ${sh}x${sw}`);
  if (kh === 1 && kw === 1 && sh === 1) return scope.finish(pointwiseFilterGradient(scope, x, dy));
  const { top, left } = info.padInfo;
  // Rows past the last one the forward pass read are cut off rather than padded negatively.
  const bottom = kh - inHeight - top + sh * (outHeight - 1);
  const right = kw - inWidth - left + sw * (outWidth - 1);
  let input = x;
  if (bottom < 0 || right < 0) {
    const [n, , , c] = x.shape;
    input = scope.run('Slice', { x }, { begin: [0, 0, 0, 0], size: [n, inHeight + Math.min(bottom, 0), inWidth + Math.min(right, 0), c] });
  }
  const swapped = scope.run('Transpose', { x: input }, { perm: [3, 1, 2, 0] });
  const dyAsFilter = scope.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const pad: Padding = [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]];
  const grad = conv2d(scope, swapped, dyAsFilter, sh, pad);
  return scope.finish(scope.run('Transpose', { x: grad }, { perm: [1, 2, 0, 3] }));
}

/** dW = x^T dy for a 1x1 convolution with stride 1, over all N*H*W positions at once. */
function pointwiseFilterGradient(scope: KernelScope, x: TensorInfo, dy: TensorInfo): TensorInfo {
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const co = dy.shape[3]!;
  const positions = n * h * w;
  const rows = scope.run('Reshape', { x }, { shape: [positions, ci] });
  const transposed = scope.run('Transpose', { x: rows }, { perm: [1, 0] });
  const input = scope.run('Reshape', { x: transposed }, { shape: [ci, 1, 1, positions] });
  const filter = scope.run('Reshape', { x: dy }, { shape: [1, 1, positions, co] });
  const grad = conv2d(scope, input, filter, 1, [[0, 0], [0, 0], [0, 0], [0, 0]]);
  return scope.run('Reshape', { x: grad }, { shape: [1, 1, ci, co] });
}

/** dx as forward convolutions of dy with the spatially flipped filter, one per stride phase. */
function conv2DBackpropInput({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = (attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape;
  const info = convInfo(inputShape, filter.shape, attrs!);
  const scope = new KernelScope(backend);
  const { strideHeight: sh, strideWidth: sw } = info;
  if (sh === 1 && sw === 1) return scope.finish(phaseGradient(scope, dy, filter, info, 0, 0)!);
  if (info.outHeight * info.outWidth < POLYPHASE_MIN_AREA) return scope.finish(spreadGradient(scope, dy, filter, info));
  // Stride s: dx[s*m + a, s*l + b] depends only on the taps kh = a + top (mod s), kw = b + left
  // (mod s); each phase is a dense convolution, and the phases are interleaved into dx.
  const [n, height, width, channels] = inputShape;
  let dx: TensorInfo | undefined;
  for (let a = 0; a < sh; a++) {
    for (let b = 0; b < sw; b++) {
      const phase = phaseGradient(scope, dy, filter, info, a, b);
      if (!phase) continue;
      const placed = placePhase(scope, phase, sh, sw, a, b, height, width);
      dx = dx ? scope.run('Add', { a: dx, b: placed }) : placed;
    }
  }
  return scope.finish(dx ?? scope.run('Fill', {}, { shape: [n, height, width, channels], value: 0, dtype: 'float32' }));
}

/**
 * Below this many dy positions a strided input gradient is one convolution over dy spread with
 * zeros rather than s*s phase convolutions: measured on wasm, the phases' fixed costs outweigh
 * the zeros' arithmetic for Inception's 8x8 and 7x7 maps (3x3, stride 2: 30 against 78-121 ms),
 * and the zeros win for 17x17 (629 against 296-379 ms).
 */
const POLYPHASE_MIN_AREA = 144;

/** The strided input gradient as one convolution of dy with stride-1 zeros between its values. */
function spreadGradient(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight, inWidth } = info;
  const spread = spreadWithZeros(scope, dy, sh, sw);
  const [n, spreadHeight, spreadWidth, c] = spread.shape as [number, number, number, number];
  const flippedFilter = scope.flipFilter(filter);
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = inHeight - spreadHeight - top + kh - 1;
  const right = inWidth - spreadWidth - left + kw - 1;
  const source = bottom < 0 || right < 0
    ? scope.run('Slice', { x: spread }, { begin: [0, 0, 0, 0], size: [n, spreadHeight + Math.min(bottom, 0), spreadWidth + Math.min(right, 0), c] })
    : spread;
  const pad: Padding = [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]];
  return conv2d(scope, source, flippedFilter, 1, pad);
}

/** One axis of a phase: which taps it uses, and how dy lines up with its outputs. */
interface PhaseAxis {
  /** First tap: a + pad (mod stride). */
  firstTap: number;
  taps: number;
  /** dy rows (or columns) to add before (negative: to drop) and after. */
  before: number;
  after: number;
  /** Output rows of this phase: positions a, a + s, ... below the input size. */
  outputs: number;
}

function phaseAxis(phase: number, stride: number, pad: number, kernel: number, dyLength: number, inputLength: number): PhaseAxis {
  const firstTap = (phase + pad) % stride;
  const taps = firstTap < kernel ? Math.ceil((kernel - firstTap) / stride) : 0;
  const shift = (phase + pad - firstTap) / stride;
  const outputs = Math.ceil((inputLength - phase) / stride);
  const before = taps - 1 - shift;
  return { firstTap, taps, before, after: outputs + taps - 1 - dyLength - before, outputs };
}

/** The outputs of dx at rows a, a + s, ... and columns b, b + s, ...: [N, ceil((H-a)/s), ceil((W-b)/s), Ci]. */
function phaseGradient(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo, a: number, b: number): TensorInfo | undefined {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight, inWidth, outHeight, outWidth } = info;
  const rows = phaseAxis(a, sh, info.padInfo.top, kh, outHeight, inHeight);
  const cols = phaseAxis(b, sw, info.padInfo.left, kw, outWidth, inWidth);
  if (rows.taps === 0 || cols.taps === 0 || rows.outputs <= 0 || cols.outputs <= 0) return undefined;
  const [, , ci, co] = filter.shape as [number, number, number, number];
  const taps = sh === 1 && sw === 1
    ? filter
    : scope.run('StridedSlice', { x: filter }, {
      begin: [rows.firstTap, cols.firstTap, 0, 0], end: [kh, kw, ci, co], strides: [sh, sw, 1, 1],
      beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
    });
  const flippedFilter = scope.flipFilter(taps);
  // Negative padding means dy has rows this phase never reads: cut them off first.
  const [n, , , c] = dy.shape as [number, number, number, number];
  const cutTop = Math.max(-rows.before, 0);
  const cutLeft = Math.max(-cols.before, 0);
  const keepRows = outHeight - cutTop + Math.min(rows.after, 0);
  const keepCols = outWidth - cutLeft + Math.min(cols.after, 0);
  const source = cutTop || cutLeft || keepRows < outHeight || keepCols < outWidth
    ? scope.run('Slice', { x: dy }, { begin: [0, cutTop, cutLeft, 0], size: [n, keepRows, keepCols, c] })
    : dy;
  const pad: Padding = [[0, 0], [Math.max(rows.before, 0), Math.max(rows.after, 0)], [Math.max(cols.before, 0), Math.max(cols.after, 0)], [0, 0]];
  return conv2d(scope, source, flippedFilter, 1, pad);
}

/** A phase's values at rows a, a + sh, ... and columns b, b + sw, ... of an [N, H, W, C] tensor of zeros. */
function placePhase(scope: KernelScope, phase: TensorInfo, sh: number, sw: number, a: number, b: number, height: number, width: number): TensorInfo {
  const spread = spreadWithZeros(scope, phase, sh, sw);
  const [n, spreadHeight, spreadWidth, c] = spread.shape as [number, number, number, number];
  const padded = scope.run('PadV2', { x: spread }, {
    paddings: [[0, 0], [a, Math.max(height - a - spreadHeight, 0)], [b, Math.max(width - b - spreadWidth, 0)], [0, 0]], constantValue: 0,
  });
  const [, paddedHeight, paddedWidth] = padded.shape;
  return paddedHeight === height && paddedWidth === width
    ? padded
    : scope.run('Slice', { x: padded }, { begin: [0, 0, 0, 0], size: [n, height, width, c] });
}

/** [N, H, W, C] -> [N, H*sh, W*sw, C] with each value followed by sh-1 zero rows and sw-1 zero columns. */
function spreadWithZeros(scope: KernelScope, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  const [n, h, w, c] = dy.shape as [number, number, number, number];
  const columns = scope.run('Reshape', { x: dy }, { shape: [n * h, w, 1, c] });
  const paddedColumns = scope.run('PadV2', { x: columns }, { paddings: [[0, 0], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
  const rows = scope.run('Reshape', { x: paddedColumns }, { shape: [n, h, 1, w * sw * c] });
  const paddedRows = scope.run('PadV2', { x: rows }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0]], constantValue: 0 });
  return scope.run('Reshape', { x: paddedRows }, { shape: [n, h * sh, w * sw, c] });
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

/** Registers (or replaces) the kernels above on the wasm backend. Idempotent. */
export function registerWasmGradKernels(): void {
  for (const config of WASM_GRAD_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}
