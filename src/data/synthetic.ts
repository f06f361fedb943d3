// --data synthetic: one batch of random images and labels of the model's shape, made once and
// handed out at every step, as tf_cnn_benchmarks does, so that a benchmark measures the model
// and the gradient exchange, not the input. An epoch has as many steps as ILSVRC2012 would give.

import { createRandom, randomInt } from './random.js';
import { rankRange } from './shard.js';
import type { InputOptions } from './input.js';
import type { BadImage, Batch, InputPipeline, Split } from './types.js';

/** ILSVRC2012's image counts, so that epochs of synthetic data last as long as real ones. */
export const IMAGENET_IMAGES: Readonly<Record<Split, number>> = { train: 1_281_167, validation: 50_000 };
export const IMAGENET_CLASSES = 1000;

/** The input options that synthetic data uses; the rest concern files and decoding. */
export type SyntheticOptions = Pick<InputOptions, 'split' | 'batchSize' | 'imageSize' | 'rank' | 'size' | 'seed' | 'numClasses'>;

export class SyntheticInput implements InputPipeline {
  readonly description: string;
  readonly numClasses: number;
  readonly classes = undefined;
  readonly stepsPerEpoch: number;
  readonly badImages: readonly BadImage[] = [];
  private readonly batch: Batch;

  constructor(options: SyntheticOptions) {
    const { split, batchSize, imageSize, rank, size, seed } = options;
    this.numClasses = options.numClasses ?? IMAGENET_CLASSES;
    const { start, end } = rankRange(IMAGENET_IMAGES[split], rank, size, 'train');
    this.stepsPerEpoch = Math.floor((end - start) / batchSize);
    const random = createRandom(seed, rank);
    const images = new Float32Array(batchSize * imageSize * imageSize * 3);
    for (let i = 0; i < images.length; i++) images[i] = random() * 2 - 1;
    const labels = Int32Array.from({ length: batchSize }, () => randomInt(random, this.numClasses));
    this.batch = { images, labels, batchSize, imageSize };
    this.description = `${split}: synthetic data, one random batch of ${batchSize} images ${imageSize}x${imageSize} reused at each of ${this.stepsPerEpoch} steps per epoch`;
  }

  /** The same batch every step; treat it as read-only. */
  async *epoch(_epoch = 0, fromStep = 0): AsyncGenerator<Batch, void, undefined> {
    for (let step = fromStep; step < this.stepsPerEpoch; step++) yield this.batch;
  }

  async close(): Promise<void> {}
}
