// When a run stops before its last step: the job's lifecycle, consulted by the loop at each step
// boundary. A worker wants to stop when it got the requeue signal or SIGTERM (the signal handler
// only records it), or when the job's end is so near that one more step, the stop step and a
// checkpoint would not fit before it with the margin. Each worker's wish travels in a slot of the
// step's averaged figures, so every worker learns of any one's at the same step, for free; all
// then run one more step (whose optimizer state the first worker captures), write one checkpoint
// and exit with REQUEUE_STATUS.

/** "Checkpointed before the end: requeue me" (EX_TEMPFAIL of sysexits.h: try again later). */
export const REQUEUE_STATUS = 75;

export interface LifecycleOptions {
  /** When the job ends, in ms since the epoch (Date.now()), or undefined: no end known. */
  endsAt: number | undefined;
  /** Where the end time came from, for the log: "SLURM_JOB_END_TIME", "squeue", ... */
  endSource: string;
  /** Kept free before the end, beyond the steps and the checkpoint. */
  marginMs: number;
  /** A checkpoint's expected time before one was measured. */
  checkpointGuessMs: number;
  /** The first stop signal received so far, if any (its later ones come through notify). */
  signal: string | undefined;
  now(): number;
}

export interface StopWish {
  /** E.g. "SIGUSR1" or "the job's end (SLURM_JOB_END_TIME) at 2026-12-01T14:00:00.000Z is 95 s away". */
  reason: string;
}

/** How many recent step times the estimate of the next one looks at. */
const RECENT_STEPS = 8;

export class RunLifecycle {
  private signal: string | undefined;
  private readonly stepMs: number[] = [];
  private checkpointMs: number | undefined;

  constructor(private readonly options: LifecycleOptions) {
    this.signal = options.signal;
  }

  /** A stop signal came (called from the signal handler: it only records). */
  notify(signal: string): void {
    this.signal ??= signal;
  }

  /** A step took this long (wall time, data to exchange). */
  stepTook(ms: number): void {
    this.stepMs.push(ms);
    if (this.stepMs.length > RECENT_STEPS) this.stepMs.shift();
  }

  /** The last checkpoint took this long to be on disk. */
  checkpointTook(ms: number): void {
    this.checkpointMs = ms;
  }

  /** The time one step is expected to take: the slowest of the recent ones (0 before the first). */
  expectedStepMs(): number {
    return this.stepMs.length === 0 ? 0 : Math.max(...this.stepMs);
  }

  /** What a stop from now needs before the end: this step, the stop step, a checkpoint, the margin. */
  neededMs(): number {
    return 2 * this.expectedStepMs() + (this.checkpointMs ?? this.options.checkpointGuessMs) + this.options.marginMs;
  }

  /** This worker's wish at the step boundary, or undefined: go on. */
  wish(): StopWish | undefined {
    if (this.signal) return { reason: this.signal };
    const { endsAt } = this.options;
    if (endsAt === undefined) return undefined;
    const left = endsAt - this.options.now();
    const needed = this.neededMs();
    if (left > needed) return undefined;
    return {
      reason: `the job's end (${this.options.endSource}) at ${new Date(endsAt).toISOString()} is ${Math.round(left / 1000)} s away, ` +
        `and a step, the stop step, a checkpoint and the margin need ${Math.round(needed / 1000)} s`,
    };
  }

  /** One line for the start of the run: what it will stop for. */
  describe(requeueSignal: string): string {
    const { endsAt, endSource, marginMs } = this.options;
    const end = endsAt === undefined
      ? 'no end time known (no time limit, or not under Slurm or PBS)'
      : `the job ends at ${new Date(endsAt).toISOString()} (${endSource}): stopping with a checkpoint ${Math.round(marginMs / 1000)} s + 2 steps + a checkpoint before it`;
    return `lifecycle: on ${requeueSignal} or SIGTERM, every worker stops within 3 steps, after the same one, with a checkpoint (exit status ${REQUEUE_STATUS}); ${end}`;
  }
}
