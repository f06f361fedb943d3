// What happens to the averaged gradients between the exchange and the update, the same on a
// worker and on a parameter server: weight decay on the decayed runs of the vector (L2 added to
// the gradients, or adamw's decoupled decay of the values), the global norm, clipping by it.
import { decouplesWeightDecay, type OptimizerConfig } from './types.js';

/** A run [start, start + length) of a flat vector (or of a shard of one). */
export interface Run {
  start: number;
  length: number;
}

/** Adds [start, start + length) to runs in order, merged into the last run when it continues it. */
export function appendRun(runs: Run[], start: number, length: number): void {
  const last = runs.at(-1);
  if (last && last.start + last.length === start) last.length += length;
  else runs.push({ start, length });
}

/** The runs of the variables that `decayed` marks, in a vector of variables of `lengths`, adjacent ones merged. */
export function decayRunsOf(lengths: readonly number[], decayed: readonly boolean[]): Run[] {
  const runs: Run[] = [];
  let offset = 0;
  for (const [i, length] of lengths.entries()) {
    if (decayed[i] && length > 0) appendRun(runs, offset, length);
    offset += length;
  }
  return runs;
}

/** gradients += weightDecay * params on the runs: the gradient of weightDecay / 2 * sum(params^2), TF-slim's l2_regularizer. */
export function addL2(gradients: Float32Array, params: Float32Array, runs: readonly Run[], weightDecay: number): void {
  if (weightDecay === 0) return;
  for (const { start, length } of runs) {
    for (let i = start; i < start + length; i++) gradients[i] = gradients[i]! + weightDecay * params[i]!;
  }
}

/** params *= factor on the runs, within [from, to) (adamw: factor = 1 - learning rate x weight decay). */
export function scaleRuns(params: Float32Array, runs: readonly Run[], factor: number, from = 0, to = params.length): void {
  if (factor === 1) return;
  for (const { start, length } of runs) {
    for (let i = Math.max(start, from); i < Math.min(start + length, to); i++) params[i] = params[i]! * factor;
  }
}

/** Sum of squares of values[start, end), in float64: the same order, so the same result, everywhere. */
export function sumOfSquares(values: Float32Array, start = 0, end = values.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += values[i]! * values[i]!;
  return sum;
}

/** tf.clip_by_global_norm's factor: limit / norm above the limit, else 1 (limit 0: no clipping). */
export function clipScale(norm: number, limit: number): number {
  return limit > 0 && norm > limit && Number.isFinite(norm) ? limit / norm : 1;
}

/** Before the norm: the L2 term joins the gradients (not for adamw, whose decay is decoupled). */
export function regularizeGradients(config: OptimizerConfig, gradients: Float32Array, params: Float32Array, runs: readonly Run[]): void {
  if (!decouplesWeightDecay(config)) addL2(gradients, params, runs, config.weightDecay);
}

/** Before the update: adamw's decay of the values themselves, by learning rate x weight decay (PyTorch's AdamW). */
export function decayWeights(config: OptimizerConfig, params: Float32Array, runs: readonly Run[], learningRate: number, from = 0, to = params.length): void {
  if (decouplesWeightDecay(config)) scaleRuns(params, runs, 1 - learningRate * config.weightDecay, from, to);
}
