// The Inception-V3 recipe's learning rate: 0.045 for a global batch of 32 x 50 images, scaled
// linearly with the global batch (Goyal et al.'s rule, as tf_cnn_benchmarks applies it).
export const BASE_LEARNING_RATE = 0.045;
export const BASE_GLOBAL_BATCH = 32 * 50;

export function scaledLearningRate(globalBatch: number): number {
  return (BASE_LEARNING_RATE * globalBatch) / BASE_GLOBAL_BATCH;
}
