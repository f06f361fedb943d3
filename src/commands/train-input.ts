// `hpctrain train`'s input stage on a worker: its shard of the training split and, opened now
// rather than after training so that a missing or broken one shows before the first step, of the
// validation split; one pool of decoding threads serves both.
import type { InputPipeline } from '../data/types.js';
import { DataError } from '../errors.js';
import type { Log } from '../log.js';
import type { OptionValues } from '../options.js';

export interface TrainInputs {
  input: InputPipeline;
  /** Undefined: no evaluation. */
  evalInput: InputPipeline | undefined;
  /** Validation batches per worker; 0: all of its shard. */
  evalBatches: number;
  close(): Promise<void>;
}

export async function openTrainInputs(
  values: OptionValues, worker: { index: number; count: number }, decodeThreads: number, log: Log | undefined,
): Promise<TrainInputs> {
  const { openInput } = await import('../data/input.js');
  const { DecodePool } = await import('../data/decode-pool.js');
  const data = values.data as string;
  const pool = data === 'synthetic' ? undefined : await DecodePool.start(decodeThreads);
  const options = {
    data, batchSize: values['batch-size'] as number, imageSize: values['image-size'] as number, rank: worker.index, size: worker.count,
    seed: values.seed as number, threads: Math.max(1, decodeThreads), pool, prefetch: values.prefetch as number, numClasses: values['num-classes'] as number,
    onBadImage: (bad: { path: string; reason: string }) => log?.(`skipping ${bad.path}: ${bad.reason}`),
  };
  const opened: InputPipeline[] = [];
  const close = async () => {
    for (const pipeline of opened) await pipeline.close();
    await pool?.close();
  };
  try {
    const input = await openInput({ ...options, split: 'train' });
    opened.push(input);
    log?.(input.description);
    const evalBatches = (values['eval-batches'] as number | undefined) ?? (data === 'synthetic' ? 0 : undefined);
    let evalInput: InputPipeline | undefined;
    if (evalBatches !== 0) {
      try {
        evalInput = await openInput({ ...options, split: 'validation' });
        opened.push(evalInput);
        log?.(evalInput.description);
      } catch (error) {
        if (!(error instanceof DataError) || values['eval-batches'] !== undefined) throw error;
        log?.(`no evaluation: ${error.message}`);
      }
    }
    return { input, evalInput, evalBatches: evalBatches ?? 0, close };
  } catch (error) {
    await close();
    throw error;
  }
}
