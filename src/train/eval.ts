// Evaluation: top-1, top-5 and the cross-entropy (without label smoothing) over this rank's shard
// of the validation split (each image read once, central crop, batch norm in inference mode),
// batch by batch on the rank's compute replicas. The ranks' counts are added exactly by the caller.
import type { ComputeReplicas, EvalCounts } from '../compute/types.js';
import type { InputPipeline } from '../data/types.js';

export type { EvalCounts } from '../compute/types.js';

/** Counts over at most `maxBatches` batches of `input`'s first epoch (0: all of it). */
export async function evaluate(replicas: ComputeReplicas, input: InputPipeline, maxBatches = 0): Promise<EvalCounts> {
  const counts: EvalCounts = { images: 0, top1: 0, top5: 0, lossSum: 0 };
  let batches = 0;
  for await (const batch of input.epoch(0)) {
    const part = await replicas.evaluate(batch);
    counts.images += part.images;
    counts.top1 += part.top1;
    counts.top5 += part.top5;
    counts.lossSum += part.lossSum;
    if (maxBatches > 0 && ++batches >= maxBatches) break;
  }
  return counts;
}
