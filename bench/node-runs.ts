// One run of bench/node and its steady-state figures: hpctrain train with R ranks x T compute
// threads on synthetic data, or the PyTorch peer (bench/peers/torch_node.py) with its recipe.
import { fileURLToPath } from 'node:url';
import type { StepRecord } from '../src/metrics/csv.js';
import type { Recipe } from '../src/train/recipe.js';
import { BenchError, HpctrainRunError, median, runHpctrain, runTorchPeer, torchRecipeArgs } from './figures.js';

const PEER = fileURLToPath(new URL('../../bench/peers/torch_node.py', import.meta.url));
/** hpctrain's refusal of a batch whose step does not fit in the wasm heap (src/compute/memory.ts): a limit, not a failure. */
const WASM_REFUSAL = /error: (.*of wasm memory.*)/;

/** What every run of the benchmark shares. */
export interface RunSettings {
  /** Global, per step. */
  batch: number;
  classes: number;
  cores: number;
  /** Steps left out before the timed ones. */
  warmup: number;
  /** Steps timed. */
  steps: number;
  /** The peer's OMP_WAIT_POLICY, or 'inherit' to leave it to the environment and OpenMP. */
  ompWait: OmpWait;
}

export const OMP_WAIT = ['passive', 'active', 'inherit'] as const;
export type OmpWait = (typeof OMP_WAIT)[number];

/** One run's steady state, over its timed steps. */
export interface Figure {
  impl: 'hpctrain' | 'torch';
  size: number;
  ranks: number;
  /** Per rank: compute threads, or torch's threads. */
  threads: number;
  imagesPerSecond: number;
  meanStepMs: number;
  medianStepMs: number;
  /** hpctrain's; undefined for the peer. */
  dataShare?: number;
  commShare?: number;
}

/** A configuration's run, with the recipe hpctrain trained with, or why it has none. */
export type Outcome = { figure: Figure; recipe: Recipe } | { skipped: string };

/** Every ranks x threads that multiplies to the cores, by ranks. */
export function splitsOf(cores: number): { ranks: number; threads: number }[] {
  const splits = [];
  for (let ranks = 1; ranks <= cores; ranks++) if (cores % ranks === 0) splits.push({ ranks, threads: cores / ranks });
  return splits;
}

/**
 * hpctrain with `ranks` ranks of `threads` compute threads, global batch / ranks images each, for
 * warmup + steps + 1 steps: the last also captures the optimizer's state for the final
 * checkpoint, so it is left out with the warm-up.
 */
export async function measureHpctrain(s: RunSettings, size: number, ranks: number, threads: number): Promise<Outcome> {
  if (s.batch % ranks !== 0) return { skipped: `the global batch of ${s.batch} does not split evenly over ${ranks} ranks` };
  const rankBatch = s.batch / ranks;
  if (threads > rankBatch) return { skipped: `${threads} compute threads would share ${rankBatch} images` };
  const total = s.warmup + s.steps + 1;
  const train = ['--data', 'synthetic', '--image-size', String(size), '--batch-size', String(rankBatch), '--num-classes', String(s.classes),
    '--compute-threads', String(threads), '--steps', String(total), '--eval-batches', '0', '--checkpoint-minutes', '0', '--log-every', String(total)];
  const what = `${ranks}x${threads} at ${size}`;
  try {
    const { summary, records } = await runHpctrain(ranks, train, what);
    if (records.length !== total) throw new BenchError(`hpctrain (${what}) recorded ${records.length} steps, not ${total}`);
    return { figure: { impl: 'hpctrain', size, ranks, threads, ...steadyState(records.slice(s.warmup, -1), s.batch) }, recipe: summary.recipe };
  } catch (error) {
    const refusal = error instanceof HpctrainRunError ? WASM_REFUSAL.exec(error.output) : null;
    if (refusal) return { skipped: refusal[1]! };
    throw error;
  }
}

/** Throughput, step times and shares of the timed steps' records. */
function steadyState(timed: readonly StepRecord[], batch: number): Omit<Figure, 'impl' | 'size' | 'ranks' | 'threads'> {
  const sum = (part: (r: StepRecord) => number) => timed.reduce((total, r) => total + part(r), 0);
  const ms = sum((r) => r.stepMs);
  return {
    imagesPerSecond: (timed.length * batch * 1000) / ms, meanStepMs: ms / timed.length, medianStepMs: median(timed.map((r) => r.stepMs)),
    dataShare: sum((r) => r.dataMs) / ms, commShare: sum((r) => r.commMs) / ms,
  };
}

interface TorchReport {
  img_per_s: number;
  step_ms_mean: number;
  step_ms_median: number;
  threads: number;
}

/** The peer on all the cores with hpctrain's recipe: the first warmup + steps steps of its schedule, the last `steps` timed. */
export async function measureTorch(s: RunSettings, size: number, recipe: Recipe): Promise<Figure> {
  const args = [PEER, '--image-size', String(size), '--batch-size', String(s.batch), '--classes', String(s.classes), '--threads', String(s.cores),
    '--skip', String(s.warmup), '--timed', String(s.steps), '--steps-per-epoch', String(recipe.schedule.stepsPerEpoch), ...torchRecipeArgs(recipe, recipe.schedule.totalSteps)];
  // Passive: OpenMP's threads sleep at a barrier, as hpctrain's compute threads do (Atomics.wait). Spinning
  // ones, GNU OpenMP's default, wait out a time slice at each of a step's thousands of barriers when another
  // process holds a core: on this shared 2-core machine a 139 px step took 16 s on 2 threads, 0.9 s on 1.
  const env: Record<string, string> = s.ompWait === 'inherit' ? {} : { OMP_WAIT_POLICY: s.ompWait.toUpperCase() };
  const report = await runTorchPeer(args, s.cores, `${s.cores} threads at ${size}`, env) as TorchReport;
  if (report.threads !== s.cores) throw new BenchError(`the PyTorch peer ran on ${report.threads} threads, not ${s.cores}`);
  return { impl: 'torch', size, ranks: 1, threads: s.cores, imagesPerSecond: report.img_per_s, meanStepMs: report.step_ms_mean, medianStepMs: report.step_ms_median };
}
