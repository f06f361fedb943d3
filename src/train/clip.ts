// Gradient clipping by global norm (the recipe's 2.0), as tf.clip_by_global_norm: when the norm of
// all gradients together exceeds the limit, every gradient is scaled by limit / norm. Applied to
// the averaged gradients, so every replica clips alike.
import { tf } from '../backend/tf.js';

export interface Clipped {
  gradients: tf.NamedTensorMap;
  /** The global norm before clipping. */
  norm: number;
}

/** Frees the given gradients when it scales them. `limit` 0: no clipping, the norm is still measured. */
export function clipByGlobalNorm(gradients: tf.NamedTensorMap, limit: number): Clipped {
  const tensors = Object.values(gradients);
  // One read of one scalar: this runs every step.
  const norm = Math.sqrt(tf.tidy(() => tf.addN(tensors.map((g) => tf.sum(tf.square(g)))).dataSync()[0]!));
  if (limit <= 0 || norm <= limit || !Number.isFinite(norm)) return { gradients, norm };
  const scale = limit / norm;
  const clipped: tf.NamedTensorMap = {};
  for (const [name, gradient] of Object.entries(gradients)) clipped[name] = tf.tidy(() => tf.mul(gradient, scale));
  tf.dispose(tensors);
  return { gradients: clipped, norm };
}

/** tf.train.rmsprop keeps its rate in a field its typings call protected; schedules change it between steps. */
export function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = rate;
}
