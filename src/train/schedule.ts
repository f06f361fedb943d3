// The Inception-V3 recipe's learning rate: 0.045 for a global batch of 32 x 50 images, scaled
// linearly with the global batch (Goyal et al.'s rule, as tf_cnn_benchmarks applies it), reached
// by a linear warm-up over the first epochs (Goyal et al.: a large batch diverges without one),
// then multiplied by 0.94 every 2 epochs (the paper's decay, a staircase as TF-slim's
// exponential_decay(staircase=True) makes it).
export const BASE_LEARNING_RATE = 0.045;
export const BASE_GLOBAL_BATCH = 32 * 50;

export function scaledLearningRate(globalBatch: number): number {
  return (BASE_LEARNING_RATE * globalBatch) / BASE_GLOBAL_BATCH;
}

export interface Schedule {
  /** The rate after warm-up, before any decay. */
  peakRate: number;
  /** Epochs of linear warm-up from peakRate / (warm-up steps) to peakRate; 0 for none. */
  warmupEpochs: number;
  /** Multiplier applied every decayEpochs epochs (0.94); 1 for none. */
  decayRate: number;
  decayEpochs: number;
  stepsPerEpoch: number;
}

/** The rate of the step-th step (0-based). */
export function learningRateAt(step: number, schedule: Schedule): number {
  const warmupSteps = Math.round(schedule.warmupEpochs * schedule.stepsPerEpoch);
  if (step < warmupSteps) return (schedule.peakRate * (step + 1)) / warmupSteps;
  const epoch = step / schedule.stepsPerEpoch;
  return schedule.peakRate * schedule.decayRate ** Math.floor(epoch / schedule.decayEpochs);
}
