// BatchMatMul for the wasm backend with its transposed forms on XNNPACK. tfjs-backend-wasm hands a
// product to XNNPACK's fully-connected operator only when neither side is transposed; the others
// run a blocked scalar loop at about 2 GFLOP/s. Both products of a dense layer's gradient are
// transposed ones (dW = x^T dy, dx = dy W^T): Inception-V3's classifier, 2048 -> 1000 at batch 8,
// spent 25 ms a step in them. Here the operand that is cheaper to move is transposed explicitly,
// or the product is computed transposed (C^T = op(B)^T op(A)^T), whichever moves fewer values,
// and the plain product runs on XNNPACK.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { KernelScope, replaceWasmKernel } from './kernel-scope.js';

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: NamedAttrMap;
}

let packagedBatchMatMul: KernelConfig['kernelFunc'] | undefined;

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** [rows, cols] of the last two axes. */
function matrixOf(info: TensorInfo): [number, number] {
  const { shape } = info;
  return [shape[shape.length - 2]!, shape[shape.length - 1]!];
}

function batchMatMul(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const single = sizeOf(a.shape.slice(0, -2)) === 1 && sizeOf(b.shape.slice(0, -2)) === 1;
  if ((!transposeA && !transposeB) || !single || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return packagedBatchMatMul!(args as never) as TensorInfo;
  }
  const [aRows, aCols] = matrixOf(a);
  const [bRows, bCols] = matrixOf(b);
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const n = transposeB ? bRows : bCols;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const scope = new KernelScope(backend);
  const matrix = (x: TensorInfo, rows: number, cols: number) => scope.run('Reshape', { x }, { shape: [1, rows, cols] });
  const transposed = (x: TensorInfo, rows: number, cols: number) => scope.run('Transpose', { x: matrix(x, rows, cols) }, { perm: [0, 2, 1] });
  const plain = (left: TensorInfo, right: TensorInfo) =>
    scope.run('BatchMatMul', { a: left, b: right }, { transposeA: false, transposeB: false });
  // Values moved: C = op(A) op(B) by transposing what is transposed, against C^T = op(B)^T op(A)^T.
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0);
  const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n;
  let product: TensorInfo;
  if (direct <= swapped) {
    const left = transposeA ? transposed(a, k, m) : matrix(a, m, k);
    const right = transposeB ? transposed(b, n, k) : matrix(b, k, n);
    product = plain(left, right);
  } else {
    const left = transposeB ? matrix(b, n, k) : transposed(b, k, n);
    const right = transposeA ? matrix(a, k, m) : transposed(a, m, k);
    product = scope.run('Transpose', { x: plain(left, right) }, { perm: [0, 2, 1] });
  }
  return scope.finish(scope.run('Reshape', { x: product }, { shape: outShape }));
}

/** Registers (or replaces) wasm's BatchMatMul with the above, which calls the package's for plain products. Idempotent. */
export function registerWasmMatMulKernel(): void {
  packagedBatchMatMul = replaceWasmKernel(tf.BatchMatMul, batchMatMul as unknown as KernelConfig['kernelFunc']) ?? packagedBatchMatMul;
}
