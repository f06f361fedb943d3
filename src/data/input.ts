// The input pipeline's entry point: `--data synthetic` or a directory, whose layout is detected
// (layout.ts), opened (imagenet-dir.ts, tfrecord-shards.ts) and read in batches (loader.ts).
//
//   const input = await openInput({ data: '/data/imagenet', split: 'train', batchSize: 32,
//     imageSize: 299, rank, size, seed, threads: 4, prefetch: 2 });
//   for (let epoch = 0; ; epoch++) for await (const { images, labels } of input.epoch(epoch)) ...
//   await input.close();

import { OptionsError } from '../errors.js';
import { DecodePool } from './decode-pool.js';
import { openImagenetDir } from './imagenet-dir.js';
import { detectLayout } from './layout.js';
import { DirectoryInput } from './loader.js';
import type { ShardMode } from './shard.js';
import { IMAGENET_CLASSES, SyntheticInput } from './synthetic.js';
import { openTfRecordShards } from './tfrecord-shards.js';
import type { BadImage, InputPipeline, Split } from './types.js';

export interface InputOptions {
  /** 'synthetic', or the directory holding the data. */
  data: string;
  split: Split;
  batchSize: number;
  /** Images are imageSize x imageSize (299 for Inception-V3). */
  imageSize: number;
  rank: number;
  size: number;
  /** Shared by every rank: the epoch order and the crops derive from it. 0..2^32-1. */
  seed: number;
  /** Decode worker threads, one core each. */
  threads: number;
  /** Batches decoded ahead of the one in use. */
  prefetch: number;
  /** Default: 'train' for the train split, 'eval' for validation. */
  mode?: ShardMode;
  /** Default 0.01. */
  maxBadFraction?: number;
  /** Called once per distinct bad image, when it is first met. */
  onBadImage?: (bad: BadImage) => void;
  /** A flat validation folder's labels file, instead of the places layout.ts looks. */
  labelsFile?: string;
  /** TFRecord only: classes (default 1000) and the label of class 0 (default 1, build_imagenet_data.py). */
  numClasses?: number;
  labelOffset?: number;
  /** Share one pool between pipelines (train and validation); it is then not closed by close(). */
  pool?: DecodePool;
}

export async function openInput(options: InputOptions): Promise<InputPipeline> {
  validateInputOptions(options);
  const { data, split, batchSize, imageSize, rank, size, seed } = options;
  if (data === 'synthetic') return new SyntheticInput({ split, batchSize, imageSize, rank, size, seed, numClasses: options.numClasses });
  const layout = detectLayout(data, split, options.labelsFile);
  const dataset =
    layout.format === 'tfrecord'
      ? openTfRecordShards(layout, { numClasses: options.numClasses ?? IMAGENET_CLASSES, labelOffset: options.labelOffset ?? 1 })
      : openImagenetDir(layout);
  const pool = options.pool ?? (await DecodePool.start(options.threads));
  return new DirectoryInput(
    dataset,
    pool,
    {
      batchSize,
      imageSize,
      rank,
      size,
      seed,
      prefetch: options.prefetch,
      mode: options.mode ?? (split === 'train' ? 'train' : 'eval'),
      maxBadFraction: options.maxBadFraction ?? 0.01,
      onBadImage: options.onBadImage,
    },
    options.pool === undefined,
  );
}

export function validateInputOptions(options: InputOptions): void {
  const whole = (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new OptionsError(`${name} ${value} is not a whole number in ${min}..${max}`);
    }
  };
  if (!options.data) throw new OptionsError('--data is empty: give a directory or "synthetic"');
  if (options.split !== 'train' && options.split !== 'validation') {
    throw new OptionsError(`split "${String(options.split)}" is neither "train" nor "validation"`);
  }
  whole('batch size', options.batchSize, 1);
  whole('image size', options.imageSize, 1, 4096);
  whole('size', options.size, 1);
  whole('rank', options.rank, 0, options.size - 1);
  whole('seed', options.seed, 0, 2 ** 32 - 1);
  whole('decode threads', options.threads, 1, 1024);
  whole('prefetch', options.prefetch, 0, 1024);
  if (options.numClasses !== undefined) whole('number of classes', options.numClasses, 1);
  if (options.labelOffset !== undefined) whole('label offset', options.labelOffset, 0);
  const bad = options.maxBadFraction;
  if (bad !== undefined && !(bad >= 0 && bad <= 1)) throw new OptionsError(`bad-image fraction ${bad} is not in 0..1`);
}
