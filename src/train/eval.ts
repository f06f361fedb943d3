// Evaluation: top-1, top-5 and the cross-entropy (without label smoothing) over this rank's shard
// of the validation split (each image read once, central crop, batch norm in inference mode).
// The ranks' counts are added exactly by the caller.
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';
import type { InputPipeline } from '../data/types.js';
import { crossEntropy, smoothedTargets } from '../compute/loss.js';

export interface EvalCounts {
  images: number;
  top1: number;
  top5: number;
  /** Sum over the images of -log softmax(logits)[label]: the loss without label smoothing. */
  lossSum: number;
}

/** Counts over at most `maxBatches` batches of `input`'s first epoch (0: all of it). */
export async function evaluate(model: tfl.LayersModel, input: InputPipeline, maxBatches = 0): Promise<EvalCounts> {
  const counts: EvalCounts = { images: 0, top1: 0, top5: 0, lossSum: 0 };
  const k = Math.min(5, input.numClasses);
  let batches = 0;
  for await (const batch of input.epoch(0)) {
    const [logits, labels, loss] = tf.tidy(() => {
      const outputs = model.apply(tf.tensor4d(batch.images, [batch.batchSize, batch.imageSize, batch.imageSize, 3]), { training: false });
      const main = (Array.isArray(outputs) ? outputs[0]! : outputs) as tf.Tensor2D;
      const labelTensor = tf.tensor1d(batch.labels, 'int32');
      return [main, labelTensor, crossEntropy(main, smoothedTargets(labelTensor, input.numClasses, 0))] as const;
    });
    try {
      const [inTop1, inTop5] = await Promise.all([tf.inTopKAsync(logits, labels, 1), tf.inTopKAsync(logits, labels, k)]);
      counts.top1 += countHits(await inTop1.data());
      counts.top5 += countHits(await inTop5.data());
      tf.dispose([inTop1, inTop5]);
      counts.lossSum += (await loss.data())[0]! * batch.batchSize;
    } finally {
      tf.dispose([logits, labels, loss]);
    }
    counts.images += batch.batchSize;
    if (maxBatches > 0 && ++batches >= maxBatches) break;
  }
  return counts;
}

function countHits(hits: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < hits.length; i++) count += Number(hits[i]);
  return count;
}
