// Which parameter server holds which variable. Variables stay whole on one server, as
// tf.train.replica_device_setter places them: by size (each variable, largest first, to the server
// holding the fewest values so far: TensorFlow's greedy load balancing by byte size) or
// round-robin in model order. A shard is a server's variables in layout order, so its trainable
// values come first, as in the flat vector.
import { appendRun, type Run } from '../optim/regularize.js';

export const PLACEMENTS = ['size', 'round-robin'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export interface Shard {
  /** Runs of the flat vector this shard holds, in order; adjacent variables merged. */
  ranges: { start: number; length: number }[];
  length: number;
  /** Its first trainableLength values are trainable. */
  trainableLength: number;
}

/** The server index of each variable. */
export function placeVariables(lengths: readonly number[], servers: number, placement: Placement): number[] {
  if (servers < 1) throw new Error('no parameter server to place variables on');
  if (placement === 'round-robin') return lengths.map((_, i) => i % servers);
  const load = new Array<number>(servers).fill(0);
  const server = new Array<number>(lengths.length).fill(0);
  const bySize = lengths.map((length, i) => ({ length, i })).sort((a, b) => b.length - a.length || a.i - b.i);
  for (const { length, i } of bySize) {
    const least = load.indexOf(Math.min(...load));
    server[i] = least;
    load[least]! += length;
  }
  return server;
}

/** Each server's shard of a flat vector whose first `trainableLength` values are trainable. */
export function shardsOf(lengths: readonly number[], trainableLength: number, servers: number, placement: Placement): Shard[] {
  const owner = placeVariables(lengths, servers, placement);
  const shards: Shard[] = Array.from({ length: servers }, () => ({ ranges: [], length: 0, trainableLength: 0 }));
  let offset = 0;
  for (const [i, length] of lengths.entries()) {
    const shard = shards[owner[i]!]!;
    const last = shard.ranges.at(-1);
    // Never across the trainable boundary: the optimizer state covers the trainable part only.
    if (last && last.start + last.length === offset && offset !== trainableLength) last.length += length;
    else if (length > 0) shard.ranges.push({ start: offset, length });
    shard.length += length;
    if (offset < trainableLength) shard.trainableLength += length;
    offset += length;
  }
  return shards;
}

/**
 * out <- the shard's values of flat, in shard order, as many as out holds: the shard's trainable
 * part alone when out is that long (flat then need only cover the trainable part, as optimizer
 * state does).
 */
export function gatherShard(flat: Float32Array, shard: Shard, out: Float32Array): void {
  for (const run of shardRuns(shard, 0, out.length)) out.set(flat.subarray(run.flat, run.flat + run.length), run.at);
}

/** flat <- the shard's values (all, or its first values.length), each back in its place. */
export function scatterShard(values: Float32Array, shard: Shard, flat: Float32Array): void {
  for (const run of shardRuns(shard, 0, values.length)) flat.set(values.subarray(run.at, run.at + run.length), run.flat);
}

/** Runs of the flat vector (e.g. the decayed variables) in the shard's positions, for those the shard holds. */
export function runsInShard(shard: Shard, runs: readonly Run[]): Run[] {
  const inShard: Run[] = [];
  let at = 0;
  for (const range of shard.ranges) {
    for (const run of runs) {
      const lo = Math.max(run.start, range.start);
      const hi = Math.min(run.start + run.length, range.start + range.length);
      if (lo < hi) appendRun(inShard, at + lo - range.start, hi - lo);
    }
    at += range.length;
  }
  return inShard;
}

export interface ShardRun {
  /** Where the run starts in the flat vector. */
  flat: number;
  /** Where it starts in the shard. */
  at: number;
  length: number;
}

/** The runs of the flat vector that shard positions [from, to) stand for, in order. */
export function shardRuns(shard: Shard, from: number, to: number): ShardRun[] {
  const runs: ShardRun[] = [];
  let at = 0;
  for (const { start, length } of shard.ranges) {
    const lo = Math.max(from, at);
    const hi = Math.min(to, at + length);
    if (lo < hi) runs.push({ flat: start + lo - at, at: lo, length: hi - lo });
    at += length;
    if (at >= to) break;
  }
  return runs;
}
