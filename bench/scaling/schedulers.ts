// How the sweep runs a job, and asks after it, on each of the three ways hpctrain runs: sbatch
// with slurm/train.slurm, qsub with pbs/train.pbs, or the local launcher on this machine (one
// rank per "node"). The job's settings reach the batch script as HPCTRAIN_* variables, as a user
// would pass them (sbatch --export, qsub -v).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { signalNumber } from '../../src/signals.js';
import { BenchError, tail } from '../figures.js';
import type { Via } from './manifest.js';
import type { StudyJob, StudySettings } from './plan.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
export const ALLREDUCE = fileURLToPath(new URL('../allreduce.js', import.meta.url));

export interface SubmitOptions {
  via: Via;
  /** The scheduler's time limit per job, e.g. 00:20:00 (default: the batch script's). */
  time?: string;
  /** More arguments for sbatch or qsub (partition, account, QOS), as the site wants them. */
  submitArgs: string[];
}

/** The job's settings as the batch scripts and `hpctrain train` read them. */
export function jobEnvironment(job: StudyJob, settings: StudySettings, runDir: string): Record<string, string> {
  return {
    HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_DATA: settings.data, HPCTRAIN_STEPS: String(settings.warmupSteps + settings.timedSteps),
    HPCTRAIN_BATCH_SIZE: String(job.batchSize), HPCTRAIN_IMAGE_SIZE: String(settings.imageSize),
    HPCTRAIN_STRATEGY: job.servers > 0 ? 'ps' : 'allreduce', HPCTRAIN_NUM_PS: String(job.servers), HPCTRAIN_TASKS_PER_NODE: String(job.ranks / job.nodes),
    // Timing only: no evaluation, no checkpoint but the last (one kept), no requeue (a job cut short is a failed measurement).
    HPCTRAIN_EVAL_BATCHES: '0', HPCTRAIN_CHECKPOINT_MINUTES: '0', HPCTRAIN_KEEP_CHECKPOINTS: '1', HPCTRAIN_REQUEUE: 'no', HPCTRAIN_LOG_EVERY: '1',
    ...settings.env,
  };
}

/** NAME=value,... as sbatch --export and qsub -v take them; a value with a comma would be cut there. */
function variableList(env: Record<string, string>): string {
  return Object.entries(env).map(([name, value]) => {
    if (value.includes(',')) throw new BenchError(`${name}="${value}" holds a comma, which sbatch --export and qsub -v would cut at; rename the path or setting`);
    return `${name}=${value}`;
  }).join(',');
}

/** Submits the job; `after` is the job it waits for (one after another), if any. Returns the scheduler's job id. */
export async function submitBatchJob(job: StudyJob, env: Record<string, string>, log: string, options: SubmitOptions, after: string | undefined): Promise<string> {
  mkdirSync(dirname(log), { recursive: true });
  const what = `${job.key} (${job.nodes} node(s), ${job.strategy})`;
  if (options.via === 'slurm') {
    return submit('sbatch', ['--parsable', `--nodes=${job.nodes}`, `--ntasks-per-node=${job.ranks / job.nodes}`, `--job-name=scaling-${job.key}`, `--output=${log}`,
      ...(options.time ? [`--time=${options.time}`] : []), ...(after ? [`--dependency=afterany:${after}`] : []), ...options.submitArgs,
      `--export=ALL,${variableList(env)}`, 'slurm/train.slurm'], what);
  }
  // -V: the submitting shell's environment (PATH to node) too, as under Slurm's Torque wrappers -v alone would drop it.
  return submit('qsub', ['-V', '-N', `scaling-${job.key}`, '-l', `nodes=${job.nodes}${job.ranks > job.nodes ? `:ppn=${job.ranks / job.nodes}` : ''}`, '-o', log, '-j', 'oe',
    ...(options.time ? ['-l', `walltime=${options.time}`] : []), ...(after ? ['-W', `depend=afterany:${after}`] : []), ...options.submitArgs,
    '-v', variableList(env), 'pbs/train.pbs'], what);
}

/** Runs sbatch or qsub and returns the job id it printed; an error names `what` and quotes the command (settings left out). */
async function submit(command: 'sbatch' | 'qsub', args: string[], what: string): Promise<string> {
  const result = await execa(command, args, { cwd: REPO, reject: false, all: true, stdin: 'ignore' });
  // sbatch --parsable: "123" or "123;cluster"; qsub: "123" or "123.server" (the id qstat and depend= take).
  const token = String(result.stdout ?? '').trim().split(/\s+/).at(-1) ?? '';
  const id = /^\d+/.test(token) ? (command === 'sbatch' ? token.split(';')[0] : token) : undefined;
  if (result.exitCode !== 0 || !id) {
    throw new BenchError(`${command} of ${what} failed with ${result.exitCode ?? result.signal}:\n${tail(result.all)}\n` +
      `the command was: ${command} ${args.map((a) => (a.startsWith('--export') || a.includes('HPCTRAIN_') ? '<settings>' : a)).join(' ')}`);
  }
  return id;
}

/** Runs the job through the local launcher, its ranks on this machine, its output in `log`; resolves to its exit status. */
export function runLocalJob(job: StudyJob, env: Record<string, string>, log: string): Promise<number> {
  return runLocalCommand([CLI, ...(job.ranks > 1 ? ['launch', '-n', String(job.ranks), '--', 'train'] : ['train'])], log, env);
}

/** sbatch --wrap of `command` on `nodes` nodes (Slurm only): a job that is not the training's batch script. */
export async function submitWrapped(nodes: number, command: string, log: string, options: SubmitOptions): Promise<string> {
  mkdirSync(dirname(log), { recursive: true });
  return submit('sbatch', ['--parsable', `--nodes=${nodes}`, '--ntasks-per-node=1', '--job-name=scaling-allreduce', `--output=${log}`,
    ...(options.time ? [`--time=${options.time}`] : []), ...options.submitArgs, '--wrap', command], 'the exchange\'s measurement');
}

/** The nodes of a Slurm partition (or of the whole cluster), as sinfo counts them. */
export async function slurmNodeCount(partition: string | undefined): Promise<number> {
  const info = await execa('sinfo', ['-h', '-o', '%D', ...(partition ? ['-p', partition] : [])], { reject: false, stdin: 'ignore' });
  if (info.exitCode !== 0) throw new BenchError(`sinfo failed (${String(info.stderr).trim() || info.exitCode}): is this a Slurm login node, and is slurmctld up?`);
  return String(info.stdout).split('\n').map(Number).filter(Number.isFinite).reduce((a, b) => a + b, 0);
}

/** `node args...` here, its output in `log` (appended); resolves to its exit status. */
export async function runLocalCommand(args: string[], log: string, env: Record<string, string> = {}): Promise<number> {
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  try {
    const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    return await new Promise<number>((done, fail) => {
      child.on('error', fail);
      child.on('exit', (code, signal) => done(code ?? 128 + signalNumber(signal ?? undefined)));
    });
  } finally {
    closeSync(fd);
  }
}

/** A batch job's state: still queued or running, or ended (with what the scheduler still knows of it). */
export interface BatchState {
  alive: boolean;
  /** "COMPLETED 0:0", "FAILED 1:0", "TIMEOUT", "C exit 1", or undefined when the scheduler has forgotten the job. */
  detail?: string;
}

export async function batchJobState(via: 'slurm' | 'pbs', jobId: string): Promise<BatchState> {
  if (via === 'slurm') {
    const shown = await execa('scontrol', ['show', 'job', jobId], { reject: false, stdin: 'ignore' });
    const state = /JobState=(\w+)/.exec(String(shown.stdout))?.[1];
    if (!state) return { alive: false, detail: await accountedState(jobId) };
    const exit = /\bExitCode=(\d+:\d+)/.exec(String(shown.stdout))?.[1];
    return { alive: ['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING'].includes(state), detail: `${state}${exit ? ` ${exit}` : ''}` };
  }
  const shown = await execa('qstat', ['-f', jobId], { reject: false, stdin: 'ignore' });
  const state = /job_state = (\w)/.exec(String(shown.stdout))?.[1];
  if (shown.exitCode !== 0 || !state) return { alive: false };
  const exit = /exit_status = (-?\d+)/.exec(String(shown.stdout))?.[1];
  return { alive: ['Q', 'R', 'H', 'W', 'T', 'E', 'S', 'B'].includes(state), detail: `state ${state}${exit ? ` exit ${exit}` : ''}` };
}

/** What Slurm's accounting (sacct) kept of a job slurmctld has forgotten, where accounting is on. */
async function accountedState(jobId: string): Promise<string | undefined> {
  const acct = await execa('sacct', ['-n', '-X', '-P', '-j', jobId, '-o', 'State,ExitCode'], { reject: false, stdin: 'ignore' });
  const line = String(acct.stdout ?? '').trim().split('\n')[0];
  return acct.exitCode === 0 && line ? line.replace('|', ' ') : undefined;
}
