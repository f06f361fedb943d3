// Direct access to a backend's float32 storage, for kernels written as plain JavaScript loops over
// it (fused batch norm, the fused optimizer update, the filter flip). Only the two backends that
// keep tensors in JavaScript-visible memory have it: wasm (its heap) and cpu (typed arrays).
// tfjs-node and tfjs-node-gpu keep tensors in libtensorflow; there the kernels' tf-op
// compositions run instead (see fused-kernels.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

export const MEMORY_BACKENDS = ['wasm', 'cpu'] as const;

export interface TensorMemory {
  /** A new float32 tensor of `shape`, zero-filled on cpu, uninitialised on wasm. */
  allocate(shape: number[]): TensorInfo;
  /**
   * The tensor's values, in place (writing to the view writes to the tensor). On wasm an
   * allocation can grow the heap and detach earlier views: allocate every output first, then view.
   */
  view(info: TensorInfo): Float32Array;
}

/** The parts of tfjs-backend-wasm's BackendWasm that reach its heap. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU that reach its arrays. */
interface CpuBackend {
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
  data: { get(dataId: object): { values: Float32Array } };
}

export function tensorMemory(backend: KernelBackend, backendName: string): TensorMemory {
  if (backendName === 'wasm') {
    const wasm = backend as unknown as WasmBackend;
    return {
      allocate: (shape) => wasm.makeOutput(shape, 'float32'),
      view: (info) => {
        if (info.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${info.dtype}`);
        return wasm.typedArrayFromHeap(info);
      },
    };
  }
  if (backendName === 'cpu') {
    const cpu = backend as unknown as CpuBackend;
    return {
      allocate: (shape) => cpu.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1))),
      view: (info) => {
        if (info.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${info.dtype}`);
        return cpu.data.get(info.dataId).values;
      },
    };
  }
  throw new Error(`the ${backendName} backend keeps its tensors out of JavaScript's reach`);
}

/** Runs another kernel of the backend by name, inside a kernel, as tfjs's own kernels do. */
export function runBackendKernel(backend: KernelBackend, backendName: string, name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const kernel = tf.getKernel(name, backendName);
  if (!kernel) throw new Error(`kernel ${name} is not registered for ${backendName}; is its backend loaded?`);
  return kernel.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}
