// Which examples a rank reads in an epoch. Pure functions of (count, rank, size, seed, epoch), so
// every rank computes the same permutation without talking to the others.
//
// Training: the whole dataset is shuffled with a generator keyed by (seed, epoch), and rank r
// takes the r-th contiguous block of floor(count / size) examples. Every rank therefore has the
// same number of examples and the same number of steps, which synchronous training needs; the
// count % size examples left over are skipped for this epoch only, and since they are different
// examples each epoch, nothing is left out for good.
//
// Evaluation: one fixed order (the same for every run and seed, so that runs are compared on the
// same images), interleaved over the ranks: rank r takes its positions r, r + size, r + 2 size, ...
// (the first count % size ranks one more). Every example is evaluated exactly once (accuracy
// summed over ranks is then exact), and `--eval-batches N` samples every class rather than the
// first classes of the class-sorted file order.

import { createRandom, randomInt } from './random.js';

export type ShardMode = 'train' | 'eval';

/** Not the run's seed: every run evaluates in the same order. */
const EVAL_ORDER_SEED = 0x5eed_e7a1;

export interface ShardOptions {
  count: number;
  rank: number;
  size: number;
  seed: number;
  epoch: number;
  mode: ShardMode;
}

/** A permutation of 0..count-1 (Fisher-Yates), the same for the same (seed, epoch). */
export function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const random = createRandom(seed, epoch);
  for (let i = count - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    const kept = order[i]!;
    order[i] = order[j]!;
    order[j] = kept;
  }
  return order;
}

/** The half-open range [start, end) of positions in the epoch's order that `rank` reads (in evaluation, only its length counts). */
export function rankRange(count: number, rank: number, size: number, mode: ShardMode): { start: number; end: number } {
  const share = Math.floor(count / size);
  if (mode === 'train') return { start: rank * share, end: (rank + 1) * share };
  const extra = count % size;
  const start = rank * share + Math.min(rank, extra);
  return { start, end: start + share + (rank < extra ? 1 : 0) };
}

/** The example indices `rank` reads in `epoch`, in the order it reads them. */
export function shardExamples(options: ShardOptions): Uint32Array {
  const { count, rank, size, seed, epoch, mode } = options;
  const { start, end } = rankRange(count, rank, size, mode);
  if (mode === 'eval') {
    const order = epochOrder(count, EVAL_ORDER_SEED, 0);
    const indices = new Uint32Array(end - start);
    for (let i = 0; i < indices.length; i++) indices[i] = order[rank + i * size]!;
    return indices;
  }
  return epochOrder(count, seed, epoch).slice(start, end);
}
