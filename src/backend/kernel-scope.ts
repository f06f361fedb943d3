// Kernels written as compositions of other wasm kernels and loops over the heap: KernelScope runs
// the wasm kernels they call by name and frees every intermediate but the result.
import type * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { runBackendKernel, type TensorMemory, tensorMemory } from './tensor-memory.js';

/** Runs wasm kernels by name and remembers their outputs, to free all but the result at the end. */
export class KernelScope {
  private readonly made: TensorInfo[] = [];
  private readonly memory: TensorMemory;
  constructor(private readonly backend: tf.KernelBackend) {
    this.memory = tensorMemory(backend, 'wasm');
  }

  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const output = runBackendKernel(this.backend, 'wasm', name, inputs, attrs);
    this.made.push(output);
    return output;
  }

  /**
   * a [m, k] times b [k, n] -> [m, n], on XNNPACK's fully-connected operator (wasm's BatchMatMul
   * without transposes). For a product whose b changes at every call this beats a 1x1 Conv2D:
   * tfjs's conv transposes its filter into a fresh buffer before XNNPACK packs it, where the
   * fully-connected operator packs b as it is (on 3x3 maps, 2048 -> 320 channels: 13.6 against
   * 4.6 ms).
   */
  matMul(a: TensorInfo, b: TensorInfo, m: number, k: number, n: number): TensorInfo {
    const left = this.run('Reshape', { x: a }, { shape: [1, m, k] });
    const right = this.run('Reshape', { x: b }, { shape: [1, k, n] });
    const product = this.run('BatchMatMul', { a: left, b: right }, { transposeA: false, transposeB: false });
    return this.run('Reshape', { x: product }, { shape: [m, n] });
  }

  /** A new float32 tensor on the wasm heap, freed by finish() unless it is the result. */
  allocate(shape: number[]): TensorInfo {
    const output = this.memory.allocate(shape);
    this.made.push(output);
    return output;
  }

  view(info: TensorInfo): Float32Array {
    return this.memory.view(info);
  }

  /** How many intermediates there are so far, for releaseSince. */
  mark(): number {
    return this.made.length;
  }

  /** Frees the intermediates made since `mark` but `keep`: a loop's, each round, lest they pile up. */
  releaseSince(mark: number, keep?: TensorInfo): void {
    for (const info of this.made.splice(mark)) {
      if (info === keep) this.made.push(info);
      else this.backend.disposeData(info.dataId);
    }
  }

  /** Frees one intermediate before the end. */
  free(info: TensorInfo): void {
    const at = this.made.indexOf(info);
    if (at < 0) return;
    this.made.splice(at, 1);
    this.backend.disposeData(info.dataId);
  }

  /** Frees every intermediate except `result`, which becomes the kernel's output. */
  finish(result: TensorInfo): TensorInfo {
    for (const info of this.made) if (info !== result) this.backend.disposeData(info.dataId);
    return result;
  }
}

/**
 * Puts `replacement` in place of the wasm backend's own `kernelName` and returns the package's
 * kernel, which the replacement calls for the cases it leaves alone; undefined when the
 * replacement is already in place (registration is idempotent).
 */
export function replaceWasmKernel(kernelName: string, replacement: KernelConfig['kernelFunc']): KernelConfig['kernelFunc'] | undefined {
  const current = tfc.getKernel(kernelName, 'wasm');
  if (!current) throw new Error(`the wasm backend has no ${kernelName} kernel to build on; is @tensorflow/tfjs-backend-wasm imported?`);
  if (current.kernelFunc === replacement) return undefined;
  tfc.unregisterKernel(kernelName, 'wasm');
  // The package's setup binds its wasm function when the backend starts, which may be after this.
  tfc.registerKernel({ ...current, kernelFunc: replacement });
  return current.kernelFunc;
}
