// How much wasm heap a training step needs, so that a batch that cannot fit is refused before
// the first step rather than failing inside it. The wasm heap holds at most 4 GiB; past that tfjs
// fails with "memory access out of bounds" and the backend stays unusable.
//
// Measured on the wasm backend (heap size after RMSProp steps of Inception-V3, 1000 classes):
//   size  batch  heap MiB      size  batch  heap MiB
//     75     16       808       299      1       907      299      4      1620
//    139      8      1008       299      2      1102      299      6      2022
//    139     16      1323       299      3      1310      299      8      2587
// which the model below over-estimates by 10-17%: 8 copies of the parameters (weights, gradients,
// two RMSProp slots, and the allocator's slack), and 3 float32 values per activation value kept
// for the backward pass (each layer's output, and the convolution outputs that batch norm reads
// back; the wasm Identity shares saved tensors rather than copying them, see wasm-grad-kernels.ts).
import type * as tfl from '@tensorflow/tfjs-layers';
import { OptionsError } from '../errors.js';

export const WASM_HEAP_LIMIT_BYTES = 4 * 2 ** 30;
/** Room left for the input batch, the allocator and tfjs's own bookkeeping. */
const USABLE_FRACTION = 0.92;
const BYTES_PER_PARAMETER = 4 * 8;
const BYTES_PER_ACTIVATION = 4 * 3;

export interface StepMemory {
  fixedBytes: number;
  perImageBytes: number;
}

/** Per-image activation count: every layer's output, as the backward pass keeps them. */
export function activationsPerImage(model: tfl.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const shape of shapes) total += shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  }
  return total;
}

export function estimateStepMemory(model: tfl.LayersModel): StepMemory {
  return { fixedBytes: model.countParams() * BYTES_PER_PARAMETER, perImageBytes: activationsPerImage(model) * BYTES_PER_ACTIVATION };
}

export function largestBatchThatFits(memory: StepMemory, limitBytes = WASM_HEAP_LIMIT_BYTES): number {
  return Math.max(0, Math.floor((limitBytes * USABLE_FRACTION - memory.fixedBytes) / memory.perImageBytes));
}

/**
 * Throws an OptionsError, saying the largest batch that fits, when a replica's share of a
 * `batchSize` batch cannot: the whole batch on one thread, or ceil(batchSize / threads) images on
 * each of `threads` compute threads, each with its own heap.
 */
export function assertStepFits(memory: StepMemory, batchSize: number, imageSize: number, threads = 1, limitBytes = WASM_HEAP_LIMIT_BYTES): void {
  const images = Math.ceil(batchSize / threads);
  const needed = memory.fixedBytes + memory.perImageBytes * images;
  if (needed <= limitBytes * USABLE_FRACTION) return;
  const largest = largestBatchThatFits(memory, limitBytes) * threads;
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  const where = threads > 1 ? ` over ${threads} compute threads (${images} images on each)` : '';
  throw new OptionsError(
    `a training step with --batch-size ${batchSize}${where} at --image-size ${imageSize} needs about ${gib(needed)} GiB of wasm memory${threads > 1 ? ' per thread' : ''}, ` +
      `and the wasm backend holds at most ${gib(limitBytes)} GiB`,
    largest > 0
      ? `the largest batch that fits at ${imageSize}x${imageSize} is ${largest}${threads > 1 ? ` with ${threads} compute threads (more threads fit more)` : ''}; or use a smaller --image-size, or the tfjs-node(-gpu) backend, which has no such limit`
      : `no batch fits at ${imageSize}x${imageSize}: use a smaller --image-size, or the tfjs-node(-gpu) backend`,
  );
}
