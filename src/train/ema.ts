// The moving average of the weights that the recipe evaluates (decay 0.9999), on the flat
// parameter vector. As tf.train.ExponentialMovingAverage with num_updates, the decay starts low,
// min(decay, (1 + n) / (10 + n)) at the n-th update, so that a short run's average is not stuck
// near the initial weights. Batch norm's moving averages are averaged too, as TF-slim's
// model variables are.

export function emaDecayAt(decay: number, updates: number): number {
  return Math.min(decay, (1 + updates) / (10 + updates));
}

/** average <- average - (1 - decay) * (average - params). */
export function updateEma(average: Float32Array, params: Float32Array, decay: number): void {
  const rate = 1 - decay;
  for (let i = 0; i < average.length; i++) average[i] = average[i]! - rate * (average[i]! - params[i]!);
}
