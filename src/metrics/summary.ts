// The figures of a finished run, from its step records: what rank 0 prints at the end and what
// benchmark scripts compare between runs (summary.json).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StepRecord } from './csv.js';
import { formatDuration } from './progress.js';

/**
 * Counts (steps, images, seconds) cover every record. Rates and timings — imagesPerSecond, the
 * step times and the shares — leave the first record out when there are two or more: it carries
 * the warm-up (kernel compilation, first batches), which would otherwise dominate a short run.
 */
export interface RunSummary {
  steps: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  meanStepMs: number;
  medianStepMs: number;
  p90StepMs: number;
  /** Fractions of the total step time. */
  dataShare: number;
  computeShare: number;
  commShare: number;
  firstLoss: number;
  lastLoss: number;
  meanLossLast10: number;
  /** Callers add e.g. ranks, strategy, eval top1/top5, paths. */
  [key: string]: unknown;
}

/** The run's figures, then `extra` (whose keys win over computed ones of the same name). */
export function summarize(records: readonly StepRecord[], extra: Record<string, unknown> = {}): RunSummary {
  const imagesPerStep = stepImages(records);
  const steady = records.length >= 2 ? records.slice(1) : records;
  const steadyImages = records.length >= 2 ? imagesPerStep.slice(1) : imagesPerStep;
  const steadyMs = sum(steady.map((r) => r.stepMs));
  const stepTimes = steady.map((r) => r.stepMs).sort((a, b) => a - b);
  const share = (part: (r: StepRecord) => number) => (steadyMs > 0 ? sum(steady.map(part)) / steadyMs : 0);
  const lastLosses = records.slice(-10).map((r) => r.loss);
  return {
    steps: records.length,
    images: sum(imagesPerStep),
    seconds: sum(records.map((r) => r.stepMs)) / 1000,
    imagesPerSecond: steadyMs > 0 ? (sum(steadyImages) * 1000) / steadyMs : 0,
    meanStepMs: stepTimes.length > 0 ? steadyMs / stepTimes.length : 0,
    medianStepMs: quantile(stepTimes, 0.5),
    p90StepMs: quantile(stepTimes, 0.9),
    dataShare: share((r) => r.dataMs),
    computeShare: share((r) => r.computeMs),
    commShare: share((r) => r.commMs),
    firstLoss: records[0]?.loss ?? NaN,
    lastLoss: records[records.length - 1]?.loss ?? NaN,
    meanLossLast10: lastLosses.length > 0 ? sum(lastLosses) / lastLosses.length : NaN,
    ...extra,
  };
}

/** Human lines for the end of a run (a few lines, aligned), then one per extra figure. */
export function formatSummary(summary: RunSummary): string[] {
  const s = summary;
  const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
  const rows: [string, string][] = [
    ['trained', `${s.steps} steps, ${s.images.toLocaleString('en-US')} images in ${formatDuration(s.seconds)}`],
    ['throughput', `${s.imagesPerSecond.toFixed(1)} img/s${s.steps >= 2 ? ' after the first step' : ''}`],
    ['step time', `${s.meanStepMs.toFixed(1)} ms mean, ${s.medianStepMs.toFixed(1)} median, ${s.p90StepMs.toFixed(1)} p90`],
    ['time in', `data ${percent(s.dataShare)}, compute ${percent(s.computeShare)}, comm ${percent(s.commShare)}`],
    ['loss', `${s.firstLoss.toFixed(4)} first, ${s.lastLoss.toFixed(4)} last, ${s.meanLossLast10.toFixed(4)} mean of the last 10`],
  ];
  for (const [key, value] of Object.entries(s)) {
    if (COMPUTED.has(key) || value === undefined) continue;
    rows.push([key, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)]);
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
}

export function writeSummaryJson(path: string, summary: RunSummary): void {
  writeJsonAtomic(path, summary);
}

/** JSON written atomically (temp file + rename), so a reader never sees half of it. */
export function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    // NaN (the losses of an empty run) becomes null, as JSON has no NaN.
    writeFileSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

// The keys formatSummary shows in its own lines, taken from a summary so that the two cannot drift.
const COMPUTED = new Set(Object.keys(summarize([])));

/**
 * The images each record's step trained: the difference of the running `images` counts. For the
 * first record, of a resumed run, the count includes steps before it, so its own share is the
 * mean per step so far — exact as long as the global batch did not change.
 */
function stepImages(records: readonly StepRecord[]): number[] {
  return records.map((record, i) => {
    if (i > 0) return record.images - records[i - 1]!.images;
    return record.step > 0 ? record.images / record.step : record.images;
  });
}

/** Linearly interpolated between the nearest ranks, as numpy's default; 0 for no values. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (position - below) * (sorted[above]! - sorted[below]!);
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
