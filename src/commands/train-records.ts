// `hpctrain train`'s records, kept by the first worker: the run directory's files (metrics.csv,
// eval.csv, checkpoints, summary.json) as the run goes, and what it prints at the end.
import { join } from 'node:path';
import type { Strategy } from '../comm/types.js';
import type { InputPipeline } from '../data/types.js';
import type { OptionValues } from '../options.js';
import type { WorkerRunResult } from '../train/loop.js';
import type { RunRecords } from '../train/run-records.js';
import type { RunPlan } from './train-plan.js';
import type { CommandContext } from './types.js';

export function runDirOf(values: OptionValues, jobId: string): string {
  return (values['run-dir'] as string | undefined) ?? join('runs', jobId);
}

export async function openRunRecords(
  values: OptionValues, context: CommandContext, plan: RunPlan, input: InputPipeline, job: { runDir: string; workers: number; log(line: string): void },
): Promise<RunRecords> {
  const { RunRecords } = await import('../train/run-records.js');
  const { maxSteps, globalBatch, recipe } = plan;
  return new RunRecords({
    runDir: job.runDir, resume: values.resume as string, keepCheckpoints: values['keep-checkpoints'] as number,
    checkpointEverySteps: values['checkpoint-every'] as number, checkpointEveryMinutes: values['checkpoint-minutes'] as number,
    meta: {
      strategy: values.strategy, workers: job.workers, globalBatch, batchSize: values['batch-size'], seed: values.seed, imageSize: values['image-size'],
      numClasses: input.numClasses, auxLogits: values['aux-logits'] === true, classes: input.classes ?? null, data: values.data,
      stepsPerEpoch: input.stepsPerEpoch, recipe: recipe.name,
    },
    optimizer: recipe.optimizer.name,
    maxSteps, globalBatch, logEvery: values['log-every'] as number, terminal: context.stdoutIsTerminal === true, stdout: context.stdout, log: job.log,
  });
}

/** Who ran the job, in summary.json: what a scaling study groups its runs by. */
export interface RunJobFacts {
  scheduler: string;
  launcher: string;
  id: string;
  ranks: number;
  /** The scheduler's node list: the nodes the job was given, each once. */
  hosts: string[];
  nodes: number;
}

/** The evaluations, throughput and summary at the end of a run, and where its files are. */
export async function reportRun(
  records: RunRecords, result: WorkerRunResult, plan: RunPlan, context: CommandContext,
  run: {
    runDir: string; strategy: Strategy; workers: number; servers: number; backend: string; computeThreads: number; trainableParameters: number;
    job: RunJobFacts; log(line: string): void;
  },
): Promise<void> {
  const { formatSummary } = await import('../metrics/summary.js');
  for (const evaluated of result.evaluations) {
    context.stdout(`eval top1=${evaluated.top1.toFixed(4)} top5=${evaluated.top5.toFixed(4)} loss=${evaluated.loss.toFixed(4)} ` +
      `on ${evaluated.images} validation images (${evaluated.weights === 'ema' ? 'moving average of the' : 'trained'} weights)\n`);
  }
  const summary = records.finish({
    strategy: run.strategy, workers: run.workers, servers: run.servers, backend: run.backend, computeThreads: run.computeThreads,
    batchSize: plan.globalBatch / run.workers, globalBatch: plan.globalBatch, trainableParameters: run.trainableParameters, job: run.job, recipe: plan.recipe,
  });
  if (summary.steps > 0) {
    context.stdout(`trained ${summary.steps} steps in ${summary.seconds.toFixed(1)} s: ${summary.imagesPerSecond.toFixed(2)} images/s, loss ${summary.firstLoss.toFixed(4)} -> ${summary.lastLoss.toFixed(4)}\n`);
  }
  for (const line of formatSummary(summary)) run.log(line);
  context.stdout(`outputs in ${run.runDir}: metrics.csv, ${result.evaluations.length > 0 ? 'eval.csv, ' : ''}summary.json, checkpoints/\n`);
}
