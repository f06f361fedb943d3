// Who applies a step's element-wise updates (adamw's decay of the values, then the optimizer) to
// the flat vector: this thread in one piece, or a rank's compute threads each a piece of it, over
// vectors in memory they share. Each value's update depends on its own index alone, so the result
// is the same bits however the vector is split: ranks with different numbers of threads stay
// identical.
import { decayWeights, type Run } from './regularize.js';
import type { OptimizerConfig, OptimizerState } from './types.js';
import { applyUpdate, type UpdateArgs } from './update.js';

export interface UpdateJob {
  optimizer: OptimizerConfig;
  params: Float32Array;
  gradients: Float32Array;
  state: OptimizerState;
  /** The runs of the vector that weight decay applies to. */
  decayRuns: readonly Run[];
  args: UpdateArgs;
}

export interface VectorUpdater {
  /** A zeroed vector that the updater can reach (shared memory, for threads). */
  allocate(length: number): Float32Array;
  update(job: UpdateJob): Promise<void>;
}

/** Applies the job to [start, end) of the vector. */
export function updateRange(job: UpdateJob, start: number, end: number): void {
  decayWeights(job.optimizer, job.params, job.decayRuns, job.args.learningRate, start, end);
  applyUpdate(job.optimizer, job.params, job.gradients, job.state, job.args, start, end);
}

/** Piece `index` of `parties` of [0, length), in whole blocks of 16 values (no two pieces share a cache line). */
export function pieceOf(length: number, index: number, parties: number): { start: number; end: number } {
  const block = 16;
  const blocks = Math.ceil(length / block);
  return {
    start: Math.min(length, Math.floor((blocks * index) / parties) * block),
    end: Math.min(length, Math.floor((blocks * (index + 1)) / parties) * block),
  };
}

export const localUpdater: VectorUpdater = {
  allocate: (length) => new Float32Array(length),
  update: async (job) => updateRange(job, 0, job.gradients.length),
};
