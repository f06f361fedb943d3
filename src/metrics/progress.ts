// Where a run stands and when it will end, for the line rank 0 prints as steps finish. The clock
// is injected so that tests can drive it; nothing here reads the time on its own.
import { performance } from 'node:perf_hooks';

interface Sample {
  /** Milliseconds, from `now`. */
  time: number;
  step: number;
  /** Images trained since this Progress began. */
  images: number;
}

/**
 * Progress of a run of `totalSteps` starting after `startStep`: throughput over a moving window
 * of recent steps and the ETA.
 */
export class Progress {
  private readonly totalSteps: number;
  private readonly windowSteps: number;
  private readonly now: () => number;
  private step: number;
  private images = 0;
  /** The newest `windowSteps + 1` updates: the rate is measured between the first and the last. */
  private readonly samples: Sample[] = [];
  private widest = 0;

  /** `now` returns milliseconds (default performance.now); `windowSteps` defaults to 20. */
  constructor(options: { totalSteps: number; startStep?: number; windowSteps?: number; now?: () => number }) {
    const { totalSteps, startStep = 0, windowSteps = 20 } = options;
    if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new RangeError(`totalSteps must be a positive integer, not ${totalSteps}`);
    if (!Number.isInteger(startStep) || startStep < 0 || startStep > totalSteps) {
      throw new RangeError(`startStep must be an integer from 0 to totalSteps (${totalSteps}), not ${startStep}`);
    }
    if (!Number.isInteger(windowSteps) || windowSteps < 1) throw new RangeError(`windowSteps must be a positive integer, not ${windowSteps}`);
    this.totalSteps = totalSteps;
    this.windowSteps = windowSteps;
    this.now = options.now ?? (() => performance.now());
    this.step = startStep;
  }

  /** Record a finished step (its number and the images it trained, whole job). */
  update(step: number, images: number): void {
    this.step = step;
    this.images += images;
    this.samples.push({ time: this.now(), step, images: this.images });
    if (this.samples.length > this.windowSteps + 1) this.samples.shift();
  }

  /** e.g. "step 120/1000 12% 35.2 img/s ETA 4m10s" (ETA "--" before there is a rate) */
  line(): string {
    // Rounded down, so that 100% means finished.
    const percent = Math.floor((100 * Math.min(this.step, this.totalSteps)) / this.totalSteps);
    const rate = this.rate();
    const imagesPerSecond = rate ? rate.imagesPerSecond.toFixed(1) : '--';
    return `step ${this.step}/${this.totalSteps} ${percent}% ${imagesPerSecond} img/s ETA ${this.eta()}`;
  }

  /** The time left, e.g. "4m10s": "0s" at the end, "--" before there is a rate. */
  eta(): string {
    const remaining = Math.max(0, this.totalSteps - this.step);
    if (remaining === 0) return formatDuration(0);
    const rate = this.rate();
    return rate ? formatDuration(remaining / rate.stepsPerSecond) : '--';
  }

  /**
   * A terminal rendering: a bar of `width` columns ("[###...]", none below 2) plus line(), to be
   * written after '\r'; padded with spaces to the widest rendering so far, since '\r' does not
   * erase what a longer earlier one left on the line.
   */
  bar(width: number): string {
    const columns = Math.floor(width);
    let text = this.line();
    if (columns >= 2) {
      const inner = columns - 2;
      const filled = Math.floor((inner * Math.min(this.step, this.totalSteps)) / this.totalSteps);
      text = `[${'#'.repeat(filled)}${'.'.repeat(inner - filled)}] ${text}`;
    }
    this.widest = Math.max(this.widest, text.length);
    return text.padEnd(this.widest);
  }

  /**
   * Over the window, which starts at the first update rather than at construction: the first step
   * carries the warm-up (kernel compilation, the first batches decoded) and what came before it
   * (the model built, ranks joined) is no step at all.
   */
  private rate(): { imagesPerSecond: number; stepsPerSecond: number } | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.time <= first.time || last.step <= first.step) return undefined;
    const seconds = (last.time - first.time) / 1000;
    return { imagesPerSecond: (last.images - first.images) / seconds, stepsPerSecond: (last.step - first.step) / seconds };
  }
}

/** "45s", "4m10s", "2h03m", "3d04h": two units at most, the smaller truncated; "--" for no number. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const total = Math.round(Math.max(0, seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m${pad(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h${pad(Math.floor((total % 3600) / 60))}m`;
  return `${Math.floor(total / 86400)}d${pad(Math.floor((total % 86400) / 3600))}h`;
}
