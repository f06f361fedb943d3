// Batches from a dataset on disk: this rank's shard of each epoch (shard.ts), decoded by the
// worker pool straight into the batch's shared buffer, `prefetch` batches ahead of the one the
// step is using, so the step never waits while decoding keeps up.
//
// A bad image (unreadable, corrupt, a damaged record, a label out of range) is skipped, counted
// and reported once with its path. In training its slot is refilled with an example of the rank's
// shard drawn from the slot's own random sequence (seed, epoch and slot position alone decide it,
// not the order decodes finish in, nor where a resumed run started), so every rank still yields
// exactly stepsPerEpoch full batches, the ranks stay in step, and a resumed epoch holds the same
// images as the uninterrupted one; in evaluation the batch simply holds one image fewer. When more than maxBadFraction of the images a rank reads in an
// epoch are bad, the epoch stops with a DataError that lists them.

import { DataError } from '../errors.js';
import { TaskCancelledError, type DecodePool, type TaskGroup } from './decode-pool.js';
import { createRandom, randomInt } from './random.js';
import { rankRange, shardExamples, type ShardMode } from './shard.js';
import type { BadImage, Batch, Dataset, InputPipeline } from './types.js';

export interface LoaderOptions {
  batchSize: number;
  imageSize: number;
  rank: number;
  size: number;
  seed: number;
  /** Batches decoded ahead of the one in use. */
  prefetch: number;
  /** 'train': shuffled, augmented, equal shares, full batches; 'eval': every example once, central crop. */
  mode: ShardMode;
  /** 0.01: more than 1% bad images stops the run. */
  maxBadFraction: number;
  onBadImage?: (bad: BadImage) => void;
}

/** One epoch's bookkeeping, shared by the batches being assembled. */
interface EpochState {
  epoch: number;
  indices: Uint32Array;
  group: TaskGroup;
  bad: Map<number, BadImage>;
  failure: DataError | undefined;
  /** The consumer left the epoch: draw no more replacements. */
  left: boolean;
}

export class DirectoryInput implements InputPipeline {
  readonly description: string;
  readonly numClasses: number;
  readonly classes: readonly string[] | undefined;
  readonly stepsPerEpoch: number;
  private readonly reported = new Map<string, BadImage>();

  constructor(
    private readonly dataset: Dataset,
    private readonly pool: DecodePool,
    private readonly options: LoaderOptions,
    private readonly ownsPool: boolean,
  ) {
    const { batchSize, rank, size, mode } = options;
    const count = dataset.examples.count;
    const { start, end } = rankRange(count, rank, size, mode);
    this.stepsPerEpoch = mode === 'train' ? Math.floor(Math.floor(count / size) / batchSize) : Math.ceil((end - start) / batchSize);
    this.numClasses = dataset.numClasses;
    this.classes = dataset.classes;
    this.description = `${dataset.description}; rank ${rank} of ${size} reads ${this.stepsPerEpoch} batches of ${batchSize} per epoch with ${pool.threads} decode threads`;
    if (mode === 'train' && this.stepsPerEpoch === 0) {
      throw new DataError(
        `${count} ${dataset.split} images make no full batch of ${batchSize} on each of ${size} ranks (each rank gets ${Math.floor(count / size)})`,
        { rank, hint: 'use a smaller --batch-size or fewer ranks' },
      );
    }
  }

  get badImages(): readonly BadImage[] {
    return [...this.reported.values()];
  }

  async *epoch(epoch: number, fromStep = 0): AsyncGenerator<Batch, void, undefined> {
    const { rank, size, seed, mode, prefetch } = this.options;
    const indices = shardExamples({ count: this.dataset.examples.count, rank, size, seed, epoch, mode });
    const state: EpochState = { epoch, indices, group: {}, bad: new Map(), failure: undefined, left: false };
    const pending: Promise<Batch | undefined>[] = [];
    let next = fromStep;
    try {
      for (;;) {
        // The batch asked for now, and `prefetch` more: those decode while the consumer holds it.
        while (next < this.stepsPerEpoch && pending.length <= prefetch) {
          const batch = this.assemble(next++, state);
          batch.catch(() => {}); // awaited in turn below; an epoch left early must not leave it unhandled
          pending.push(batch);
        }
        if (pending.length === 0) return;
        const batch = await pending.shift()!;
        if (batch) yield batch;
      }
    } finally {
      state.left = true;
      this.pool.cancel(state.group);
    }
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }

  private async assemble(step: number, state: EpochState): Promise<Batch | undefined> {
    const { batchSize, imageSize, mode } = this.options;
    const first = step * batchSize;
    const count = mode === 'train' ? batchSize : Math.min(batchSize, state.indices.length - first);
    const perImage = imageSize * imageSize * 3;
    const output = new SharedArrayBuffer(count * perImage * Float32Array.BYTES_PER_ELEMENT);
    const labels = new Int32Array(count);
    const filled = await Promise.all(
      Array.from({ length: count }, (_, slot) => this.fillSlot(slot, first + slot, output, labels, state)),
    );
    const images = new Float32Array(output);
    if (filled.every(Boolean)) return { images, labels, batchSize: count, imageSize };
    // Evaluation: close the gaps the bad images left.
    let kept = 0;
    filled.forEach((ok, slot) => {
      if (!ok) return;
      if (kept !== slot) images.copyWithin(kept * perImage, slot * perImage, (slot + 1) * perImage);
      labels[kept++] = labels[slot]!;
    });
    if (kept === 0) return undefined;
    return { images: images.subarray(0, kept * perImage), labels: labels.slice(0, kept), batchSize: kept, imageSize };
  }

  /** Decodes the example at `position` of the epoch into `slot`, or, in training, the slot's next good replacement; false if none. */
  private async fillSlot(slot: number, position: number, output: SharedArrayBuffer, labels: Int32Array, state: EpochState): Promise<boolean> {
    const { examples, labelOffset, numClasses } = this.dataset;
    const { imageSize, seed, mode } = this.options;
    let index = state.indices[position]!;
    let replacements: (() => number) | undefined;
    for (;;) {
      if (state.failure) throw state.failure;
      if (state.left) throw new TaskCancelledError('the epoch was left');
      const result = await this.pool.run(
        {
          location: examples.location(index),
          crop: mode === 'train' ? { mode, seed, epoch: state.epoch, index } : { mode },
          imageSize,
          output,
          outputOffset: slot * imageSize * imageSize * 3,
        },
        state.group,
      );
      let reason: string;
      if (result.ok) {
        const label = examples.label(index) ?? (result.label ?? -1) - labelOffset;
        if (label >= 0 && label < numClasses) {
          labels[slot] = label;
          return true;
        }
        reason = `label ${result.label} is outside ${labelOffset}..${labelOffset + numClasses - 1}`;
      } else {
        reason = result.reason;
      }
      this.recordBad(index, reason, state);
      if (mode === 'eval') return false;
      replacements ??= this.replacementsFor(position, state);
      index = replacements();
    }
  }

  /**
   * The replacements of the slot at `position`, in an order its seed, epoch and position alone
   * decide. Known bad images are passed over without decoding them again; they are bad whenever
   * met, so what the slot ends with does not depend on which were met first.
   */
  private replacementsFor(position: number, state: EpochState): () => number {
    const { indices } = state;
    const random = createRandom(this.options.seed, state.epoch, position, 0x0bad);
    return () => {
      for (let tries = 0; tries < 4 * indices.length; tries++) {
        const index = indices[randomInt(random, indices.length)]!;
        if (!state.bad.has(index)) return index;
      }
      throw this.tooManyBad(state);
    };
  }

  private recordBad(index: number, reason: string, state: EpochState): void {
    const path = this.dataset.examples.describe(index);
    const bad = { path, reason, epoch: state.epoch };
    state.bad.set(index, bad);
    if (!this.reported.has(path)) {
      this.reported.set(path, bad);
      this.options.onBadImage?.(bad);
    }
    if (state.bad.size > this.options.maxBadFraction * state.indices.length) throw this.tooManyBad(state);
  }

  private tooManyBad(state: EpochState): DataError {
    const { rank, maxBadFraction } = this.options;
    const listed = [...state.bad.values()].slice(0, 10).map((b) => `\n  ${b.path}: ${b.reason}`).join('');
    const more = state.bad.size > 10 ? `\n  and ${state.bad.size - 10} more` : '';
    state.failure ??= new DataError(
      `rank ${rank}: ${state.bad.size} of the ${state.indices.length} images it reads in epoch ${state.epoch} could not be used, more than ${Number((maxBadFraction * 100).toFixed(2))}%:${listed}${more}`,
      { rank, hint: 'replace or remove the files named above (a few unreadable images are skipped; this many suggests a damaged copy of the data)' },
    );
    return state.failure;
  }
}
