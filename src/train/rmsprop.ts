// RMSProp on flat float32 vectors, as tf.train.rmsprop(lr, decay, momentum, epsilon) computes it
// (mean squares and moments start at zero), with the gradients first scaled for clipping by global
// norm. The same code runs on a worker (ring allreduce: every replica applies the same update to
// the same averaged gradients) and on a parameter server (its shard of the variables).

export interface RmsPropConfig {
  decay: number;
  momentum: number;
  epsilon: number;
}

/** The Inception-V3 recipe's RMSProp. */
export const RECIPE_RMSPROP: RmsPropConfig = Object.freeze({ decay: 0.9, momentum: 0.9, epsilon: 1.0 });

export interface RmsPropState {
  /** Running mean of squared gradients. */
  ms: Float32Array;
  /** Momentum of the updates. */
  mom: Float32Array;
}

export function newRmsPropState(length: number): RmsPropState {
  return { ms: new Float32Array(length), mom: new Float32Array(length) };
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

/**
 * params[i] -= the RMSProp step for gradients[i] * scale, for every i that state covers (its mean
 * squares and moments: the trainable values, or a piece of them).
 */
export function rmspropUpdate(
  params: Float32Array, gradients: Float32Array, state: RmsPropState, config: RmsPropConfig, learningRate: number, scale: number,
): void {
  const { ms, mom } = state;
  const length = ms.length;
  const { decay, momentum, epsilon } = config;
  const keep = 1 - decay;
  for (let i = 0; i < length; i++) {
    const g = gradients[i]! * scale;
    const meanSquare = Math.fround(decay * ms[i]! + keep * g * g);
    ms[i] = meanSquare;
    const moment = Math.fround(momentum * mom[i]! + (learningRate * g) / Math.sqrt(meanSquare + epsilon));
    mom[i] = moment;
    params[i] = params[i]! - moment;
  }
}
