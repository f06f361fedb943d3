// The compute stage's one interface: what the loop asks of a rank's model replicas, whether the
// rank computes on this thread (one replica) or on N compute threads (one replica each, a slice of
// the batch each, batch norm's sums and the gradients added in shared memory).
import type { Batch } from '../data/types.js';
import type { VectorUpdater } from '../optim/updater.js';
import type { ParameterLayout } from './parameters.js';

export interface StepContribution {
  /** The batch's mean loss and top-1 (over all of the rank's images). */
  loss: number;
  top1: number;
  /**
   * The rank's contribution to the step: the gradients of the mean loss over its batch in the
   * trainable part, the moving averages as the batch left them in the rest. Owned by the
   * replicas; valid until the next call.
   */
  local: Float32Array;
}

export interface EvalCounts {
  images: number;
  top1: number;
  top5: number;
  /** Sum over the images of -log softmax(logits)[label]: the loss without label smoothing. */
  lossSum: number;
}

/** Also the updater of the rank's vectors: with compute threads, they share the update. */
export interface ComputeReplicas extends VectorUpdater {
  /** Compute threads (1: this thread). */
  readonly threads: number;
  readonly layout: ParameterLayout;
  /** The seeded initial parameters, the same on every rank. */
  initialParameters(into: Float32Array): void;
  /** Every replica's variables <- `from`. */
  setParameters(from: Float32Array): void;
  /** Forward and backward over `batch` in training mode, before step `step` (0-based) is applied. */
  gradients(batch: Batch, step: number): Promise<StepContribution>;
  /** Top-1, top-5 and loss counts of `batch` in inference mode. */
  evaluate(batch: Batch): Promise<EvalCounts>;
  /** sha256 of each replica's variables: all equal, and equal to the vector's they were set from. */
  digests(): Promise<string[]>;
  close(): Promise<void>;
}
