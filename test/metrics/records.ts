// Step records for the metrics tests, made by hand so that every figure can be worked out on paper.
import type { StepRecord } from '../../src/metrics/csv.js';

/** A record whose every field differs from the others' and from step to step. */
export function stepRecord(step: number, overrides: Partial<StepRecord> = {}): StepRecord {
  return {
    step, epoch: step / 4, images: step * 48, loss: 7 - step * 0.1, top1: step / 100, learningRate: 0.045 * step / 40,
    gradNorm: 1.5 + step, dataMs: 3 + step, computeMs: 200 + step, commMs: 40 + step, stepMs: 250 + step,
    imagesPerSecond: 190 - step, slowestRank: step % 3, slowestStepMs: 260 + step, ...overrides,
  };
}
