// The messages between a rank (thread-replicas.ts) and its compute threads (compute-worker.ts).
// Bulk data never travels in them: batches, parameters and gradients are in SharedArrayBuffers.
import type { InceptionV3Args } from '../model/inception-v3.js';
import type { Run } from '../optim/regularize.js';
import type { OptimizerConfig } from '../optim/types.js';
import type { UpdateArgs } from '../optim/update.js';
import type { ParameterLayout } from './parameters.js';
import type { LossOptions } from './trainer.js';
import type { EvalCounts } from './types.js';

export interface ComputeWorkerData {
  index: number;
  parties: number;
  modelArgs: InceptionV3Args;
  loss: LossOptions;
}

export interface SharedBuffers {
  barrier: SharedArrayBuffer;
  /** Batch norm's per-channel sums (shared-sync.ts's SharedBatchSums), up to maxSumValues a call. */
  sums: SharedArrayBuffer;
  maxSumValues: number;
  /** Where unshared parameters (a moving average's) are copied for the replicas to load (float32, the layout's total length). */
  weights: SharedArrayBuffer;
  /** The rank's contribution: thread 0 packs its gradients here and every slot is added to it. */
  output: SharedArrayBuffer;
  /** Threads 1..N-1's gradients. */
  slots: SharedArrayBuffer[];
  /** The batch: images (NHWC float32) and labels (int32), each thread reading its slice. */
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
}

/** A float32 vector in shared memory. */
export interface SharedVector {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  length: number;
}

interface Slice {
  /** Per thread: its first image and its image count. */
  offsets: number[];
  sizes: number[];
  imageSize: number;
  /** Parameters to load into the replica first, if any. */
  reload: SharedVector | undefined;
}

export type WorkerRequest =
  | { type: 'attach'; shared: SharedBuffers }
  | ({ type: 'step'; step: number; total: number } & Slice)
  | ({ type: 'eval' } & Slice)
  | { type: 'digest'; reload: SharedVector | undefined }
  | { type: 'update'; optimizer: OptimizerConfig; args: UpdateArgs; decayRuns: Run[]; params: SharedVector; gradients: SharedVector; state: Record<string, SharedVector> }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; layout: ParameterLayout; parameters: number; maxSumValues: number; fixedBytes: number; perImageBytes: number }
  | { type: 'done'; loss?: number; top1?: number; counts?: EvalCounts; digest?: string }
  | { type: 'error'; message: string; stack: string | undefined; aborted: boolean };
