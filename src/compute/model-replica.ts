// One replica of the model on the current thread: the rank's model when it computes alone, or a
// compute thread's own (compute-worker.ts). It reads and writes the flat parameter vector, and
// computes a batch's gradients (a share of the rank's batch) or its evaluation counts.
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';
import type { Batch } from '../data/types.js';
import { warmUpBatchNorm } from '../model/batch-norm.js';
import { crossEntropy, smoothedTargets } from './loss.js';
import { packStep, parameterLayout, readParameters, writeParameters, type ParameterLayout } from './parameters.js';
import { computeGradients, type LossOptions } from './trainer.js';
import type { ComputeReplicas, EvalCounts, StepContribution } from './types.js';
import { parametersDigest } from './weights.js';
import { localUpdater, type UpdateJob } from '../optim/updater.js';

export class ModelReplica {
  readonly layout: ParameterLayout;

  constructor(readonly model: tfl.LayersModel, private readonly loss: LossOptions) {
    this.layout = parameterLayout(model);
  }

  read(into: Float32Array): void {
    readParameters(this.model, this.layout, into);
  }

  write(from: Float32Array): void {
    writeParameters(this.model, this.layout, from);
  }

  /** into <- the batch's gradients (scaled by `share`) and the moving averages after it; returns the scaled loss and top-1. */
  gradients(batch: Batch, step: number, share: number, into: Float32Array): { loss: number; top1: number } {
    warmUpBatchNorm(this.model, step);
    const result = computeGradients(this.model, batch, this.loss, { share });
    packStep(result.gradients, this.model, this.layout, into);
    return { loss: result.loss, top1: result.top1 };
  }

  async evaluate(batch: Batch): Promise<EvalCounts> {
    const numClasses = this.loss.numClasses;
    const [logits, labels, loss] = tf.tidy(() => {
      const outputs = this.model.apply(tf.tensor4d(batch.images, [batch.batchSize, batch.imageSize, batch.imageSize, 3]), { training: false });
      const main = (Array.isArray(outputs) ? outputs[0]! : outputs) as tf.Tensor2D;
      const labelTensor = tf.tensor1d(batch.labels, 'int32');
      return [main, labelTensor, crossEntropy(main, smoothedTargets(labelTensor, numClasses, 0))] as const;
    });
    try {
      const [inTop1, inTop5] = await Promise.all([tf.inTopKAsync(logits, labels, 1), tf.inTopKAsync(logits, labels, Math.min(5, numClasses))]);
      const counts = { images: batch.batchSize, top1: countHits(await inTop1.data()), top5: countHits(await inTop5.data()), lossSum: 0 };
      tf.dispose([inTop1, inTop5]);
      counts.lossSum = (await loss.data())[0]! * batch.batchSize;
      return counts;
    } finally {
      tf.dispose([logits, labels, loss]);
    }
  }

  digest(): string {
    const values = new Float32Array(this.layout.totalLength);
    this.read(values);
    return parametersDigest(values);
  }
}

function countHits(hits: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < hits.length; i++) count += Number(hits[i]);
  return count;
}

/** The rank computes on this thread: one replica, the whole batch. */
export class InProcessReplicas implements ComputeReplicas {
  readonly threads = 1;
  readonly layout: ParameterLayout;
  private readonly replica: ModelReplica;
  private readonly local: Float32Array;

  constructor(model: tfl.LayersModel, loss: LossOptions) {
    this.replica = new ModelReplica(model, loss);
    this.layout = this.replica.layout;
    this.local = new Float32Array(this.layout.totalLength);
  }

  initialParameters(into: Float32Array): void {
    this.replica.read(into);
  }

  allocate(length: number): Float32Array {
    return localUpdater.allocate(length);
  }

  update(job: UpdateJob): Promise<void> {
    return localUpdater.update(job);
  }

  setParameters(from: Float32Array): void {
    this.replica.write(from);
  }

  async gradients(batch: Batch, step: number): Promise<StepContribution> {
    return { ...this.replica.gradients(batch, step, 1, this.local), local: this.local };
  }

  evaluate(batch: Batch): Promise<EvalCounts> {
    return this.replica.evaluate(batch);
  }

  async digests(): Promise<string[]> {
    return [this.replica.digest()];
  }

  async close(): Promise<void> {
    this.replica.model.dispose();
  }
}
