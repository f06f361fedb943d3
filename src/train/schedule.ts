// The learning rate of each step: a linear warm-up (Goyal et al.: a large batch diverges without
// one) to the peak rate, then one of three shapes over the rest of the run: cosine decay to zero
// at the last step (Loshchilov and Hutter's SGDR without restarts, the default recipe's), the
// Inception paper's staircase (x0.94 every 2 epochs, as TF-slim's exponential_decay(staircase)
// makes it), or constant.

export const SCHEDULES = ['cosine', 'staircase', 'constant'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

export interface Schedule {
  kind: ScheduleKind;
  /** The rate at the end of the warm-up, before any decay. */
  peakRate: number;
  /** Steps of linear warm-up from peakRate / warmupSteps to peakRate; 0 for none. */
  warmupSteps: number;
  /** The run's last step (cosine reaches zero there). */
  totalSteps: number;
  stepsPerEpoch: number;
  /** staircase: multiply by decayRate every decayEpochs epochs (the warm-up's epochs count). */
  decayRate: number;
  decayEpochs: number;
}

/** The rate of the step-th step (0-based). */
export function learningRateAt(step: number, schedule: Schedule): number {
  const { peakRate, warmupSteps, totalSteps } = schedule;
  if (step < warmupSteps) return (peakRate * (step + 1)) / warmupSteps;
  switch (schedule.kind) {
    case 'constant':
      return peakRate;
    case 'staircase':
      return peakRate * schedule.decayRate ** Math.floor(step / schedule.stepsPerEpoch / schedule.decayEpochs);
    case 'cosine': {
      const span = totalSteps - warmupSteps;
      const progress = span > 0 ? Math.min(1, (step - warmupSteps) / span) : 0;
      return peakRate * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
  }
}
