// `hpctrain train`'s lifecycle stage: the signals it stops on (--requeue-signal and SIGTERM,
// claimed from the process's latch, so one that came during the start is not lost), the job's
// end (the first worker only: its wish is every worker's), and, when a run stopped early, the
// record the batch scripts read to requeue it: <run dir>/stopped.json.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJobEnd, parseDuration, type JobEnd } from '../env/job-end.js';
import type { SchedulerName } from '../env/types.js';
import { OptionsError } from '../errors.js';
import type { OptionValues } from '../options.js';
import { parseSignalName, type SignalName } from '../signals.js';
import { REQUEUE_STATUS, RunLifecycle } from '../train/lifecycle.js';
import type { CommandContext } from './types.js';

/** Before a checkpoint was timed, one is taken to need this long. */
const CHECKPOINT_GUESS_MS = 30_000;
const SQUEUE_TIMEOUT_MS = 15_000;

export interface TrainLifecycle {
  lifecycle: RunLifecycle;
  requeueSignal: SignalName;
  /** Stops reporting signals to the lifecycle. */
  close(): void;
}

export function requeueSignalOf(values: OptionValues): SignalName {
  const text = values['requeue-signal'] as string;
  const signal = parseSignalName(text);
  if (!signal) {
    throw new OptionsError(`--requeue-signal ${text} is not USR1 or USR2`, 'give USR1 (Slurm\'s --signal default here) or USR2 where USR1 is taken; SIGTERM always stops the run too');
  }
  return signal;
}

/**
 * Claims the stop signals (recording any that came before) and reads the job's end: on the first
 * worker from the environment, else from squeue under Slurm.
 */
export async function openLifecycle(
  values: OptionValues, context: CommandContext, job: { scheduler: SchedulerName; jobId: string; first: boolean; log(line: string): void },
): Promise<TrainLifecycle> {
  const requeueSignal = requeueSignalOf(values);
  const signals: SignalName[] = [requeueSignal, 'SIGTERM'];
  context.signals?.claim(signals);
  const end = job.first ? readJobEnd(context.env) ?? (job.scheduler === 'slurm' ? await squeueEnd(job.jobId, job.log) : undefined) : undefined;
  // After squeue's answer, so that a signal that came while it was asked counts as early; from
  // here to the watcher nothing awaits, so none falls between the two.
  const early = context.signals?.first(signals);
  const lifecycle = new RunLifecycle({
    endsAt: end?.endsAt, endSource: end?.source ?? '', marginMs: (values['stop-margin'] as number) * 1000,
    checkpointGuessMs: CHECKPOINT_GUESS_MS, signal: early, now: Date.now,
  });
  if (early) job.log(`got ${early} while starting: the run stops after its second step, with a checkpoint`);
  const unwatch = context.signals?.watch((signal) => {
    lifecycle.notify(signal);
    job.log(`got ${signal}: every worker stops within 3 steps, after the same one, with a checkpoint (exit status ${REQUEUE_STATUS})`);
  });
  if (job.first) job.log(lifecycle.describe(requeueSignal));
  return { lifecycle, requeueSignal, close: () => unwatch?.() };
}

/** The end from `squeue -h -j JOB -o %L` (the time left), or undefined when it does not say. */
async function squeueEnd(jobId: string, log: (line: string) => void): Promise<JobEnd | undefined> {
  const { execa } = await import('execa');
  const asked = Date.now();
  const result = await execa('squeue', ['-h', '-j', jobId, '-o', '%L'], { reject: false, timeout: SQUEUE_TIMEOUT_MS });
  const left = result.exitCode === 0 ? parseDuration(String(result.stdout)) : undefined;
  if (left === undefined) {
    const said = result.exitCode === 0 ? `printed "${String(result.stdout).trim()}"` : `failed (${String(result.stderr || result.shortMessage).trim().split('\n')[0]})`;
    log(`squeue -j ${jobId} -o %L ${said}: no time limit to plan for; the run stops on signals only`);
    return undefined;
  }
  return { endsAt: asked + left * 1000, source: 'squeue %L' };
}

export const stoppedPath = (runDir: string): string => join(runDir, 'stopped.json');

/** What the batch scripts read after the job step: why and where the run stopped. */
export interface StoppedRecord {
  status: 'stopped';
  exitStatus: number;
  reason: string;
  /** Steps done, as in the checkpoint. */
  step: number;
  /** The step this run resumed from: step > startStep means it made progress. */
  startStep: number;
  maxSteps: number;
  at: string;
}

/** A run starting in this directory drops an older run's stop record first. */
export async function clearStopped(runDir: string): Promise<void> {
  await rm(stoppedPath(runDir), { force: true });
}

export async function writeStopped(runDir: string, record: Omit<StoppedRecord, 'status' | 'exitStatus' | 'at'>): Promise<void> {
  const { writeJsonAtomic } = await import('../metrics/summary.js');
  const full: StoppedRecord = { status: 'stopped', exitStatus: REQUEUE_STATUS, ...record, at: new Date().toISOString() };
  writeJsonAtomic(stoppedPath(runDir), full);
}
