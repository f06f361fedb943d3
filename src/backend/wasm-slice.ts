// Slice and SplitV for the wasm backend, copying only the part they keep. tfjs-backend-wasm's
// Slice reads its whole input out of the heap first (readSync copies it), and SplitV slices once
// per piece: the gradient of a concatenation, which splits the incoming gradient back into its
// branches, copied the whole tensor once per branch. Inception-V3 at 299x299, batch 8: 180 ms of
// a 10.4 s step in those copies, 22 ms at 139x139.
//
// The copy is a run of `set`s of the longest contiguous rows: the trailing axes that the slice
// keeps whole are merged with the last one it cuts.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: NamedAttrMap;
}

/** Copies x[begin : begin + size] into a new tensor. */
function sliceTensor(backend: tf.KernelBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const wasm = backend as unknown as WasmBackend;
  // Allocated before the views: a growing heap detaches views taken earlier.
  const output = wasm.makeOutput(size, x.dtype);
  if (size.some((s) => s === 0)) return output;
  const source = wasm.typedArrayFromHeap(x);
  const target = wasm.typedArrayFromHeap(output);
  const rank = x.shape.length;
  // Merge trailing axes kept whole into one contiguous row.
  let axis = rank - 1;
  let row = size[axis] ?? 1;
  while (axis > 0 && size[axis] === x.shape[axis]) {
    axis--;
    row *= size[axis]!;
  }
  const strides = tf.util.computeStrides(x.shape);
  const strideOf = (a: number): number => (a === rank - 1 ? 1 : strides[a]!);
  let start = 0;
  for (let a = 0; a < rank; a++) start += begin[a]! * strideOf(a);
  if (axis <= 0 || rank === 0) {
    target.set(source.subarray(start, start + row));
    return output;
  }
  // An odometer over the axes before `axis`, each row of `row` values starting at `offset`.
  const outer = size.slice(0, axis);
  const index = new Array<number>(axis).fill(0);
  let offset = start;
  const rowStride = strideOf(axis - 1);
  const rowsPerRun = outer[axis - 1]!;
  let written = 0;
  for (;;) {
    let from = offset;
    for (let r = 0; r < rowsPerRun; r++, from += rowStride, written += row) target.set(source.subarray(from, from + row), written);
    // Carry into the axes before the innermost outer one.
    let a = axis - 2;
    while (a >= 0) {
      index[a]!++;
      offset += strideOf(a);
      if (index[a]! < outer[a]!) break;
      offset -= outer[a]! * strideOf(a);
      index[a] = 0;
      a--;
    }
    if (a < 0) return output;
  }
}

function slice({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  const { begin, size } = attrs as unknown as tf.SliceAttrs;
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size);
  return sliceTensor(backend, x, begin_, size_);
}

function splitV({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  const along = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as tf.TensorInfo as tf.Tensor, numOrSizeSplits, along);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((length) => {
    const size = [...x.shape];
    size[along] = length;
    const piece = sliceTensor(backend, x, [...begin], size);
    begin[along]! += length;
    return piece;
  });
}

const FALLBACKS = new Map<string, KernelConfig['kernelFunc']>();

/** String tensors live outside the heap: those go to the package's own kernel. */
function unlessString(name: string, kernel: (args: KernelArgs) => TensorInfo | TensorInfo[]): KernelConfig['kernelFunc'] {
  return ((args: KernelArgs) => ((args.inputs['x'] as TensorInfo).dtype === 'string' ? FALLBACKS.get(name)!(args as never) : kernel(args))) as KernelConfig['kernelFunc'];
}

/** Registers (or replaces) wasm's Slice and SplitV with the above. Idempotent. */
export function registerWasmSliceKernels(): void {
  const configs: KernelConfig[] = [
    { kernelName: tf.Slice, backendName: 'wasm', kernelFunc: unlessString(tf.Slice, slice) },
    { kernelName: tf.SplitV, backendName: 'wasm', kernelFunc: unlessString(tf.SplitV, splitV) },
  ];
  for (const config of configs) {
    const own = tf.getKernel(config.kernelName, 'wasm');
    if (own && !FALLBACKS.has(config.kernelName)) FALLBACKS.set(config.kernelName, own.kernelFunc);
    if (own) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}
