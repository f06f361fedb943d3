// Small shared pieces of the benchmarks: the error they fail with, the statistics they report,
// their argument checks, their CSV files, the hpctrain runs they time and the PyTorch peers
// they run beside them.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'csv-stringify/sync';
import { execa } from 'execa';
import { assertPortFree, portFromJobId } from '../src/cluster/ports.js';
import { PortInUseError } from '../src/errors.js';
import { readStepCsv, type StepRecord } from '../src/metrics/csv.js';
import type { RunSummary } from '../src/metrics/summary.js';
import type { Recipe } from '../src/train/recipe.js';

/** A benchmark run that did not produce trustworthy figures; the message says what came back. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The median, so that one slow repeat (a page cache miss, a busy core) does not move the figure. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The 1, 5 and 15 minute load averages, "1.02,0.80,0.51": how busy the machine was around the figures. */
export function loadAverage(): string {
  return loadavg().map((l) => l.toFixed(2)).join(',');
}

/** Wall-clock milliseconds that compare across processes on one machine, at sub-millisecond resolution. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The last few lines of a child's output, to quote in an error. */
export function tail(text: string | undefined, lines = 15): string {
  const kept = (text ?? '').trimEnd().split('\n').slice(-lines);
  return kept.length && kept[0] !== '' ? kept.map((l) => `    ${l}`).join('\n') : '    (nothing)';
}

/** minimist's `unknown` hook for benchmarks: no option or argument it was not told about. */
export function rejectUnknown(arg: string): never {
  throw new BenchError(arg.startsWith('-') ? `unknown option "${arg}"; see --help` : `unexpected argument "${arg}"; see --help`);
}

export function parseCount(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new BenchError(`${flag} "${text}" is not a whole number in ${min}..${max}`);
  return value;
}

/** "2,4,8" -> [2, 4, 8], each once; "none" -> []. */
export function parseList(text: string, flag: string, min: number, max: number): number[] {
  if (text === 'none') return [];
  return [...new Set(text.split(',').map((item) => parseCount(item.trim(), flag, min, max)))];
}

/** Writes the rows as CSV with a header, making the folder if need be. */
export function writeCsv(path: string, columns: readonly string[], records: readonly Record<string, unknown>[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, stringify([...records], { header: true, columns: [...columns] }));
}

/** The first of `count` consecutive free ports in the block hpctrain would derive from `label`. */
export async function findFreePorts(label: string, count: number): Promise<number> {
  for (let attempt = 0; attempt < 32; attempt++) {
    const base = portFromJobId(`${label}#${attempt}`);
    try {
      for (let i = 0; i < count; i++) await assertPortFree(base + i, 'localhost', label, '--port');
      return base;
    } catch (error) {
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw new BenchError(`found no ${count} free ports for ${label} in 32 tries`);
}

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** A run of hpctrain train that exited with an error; `output` is all it printed. */
export class HpctrainRunError extends BenchError {
  constructor(message: string, readonly output: string) {
    super(message);
  }
}

/** What an hpctrain train run left in its run directory: summary.json (with the recipe) and metrics.csv. */
export interface HpctrainRun {
  summary: RunSummary & { recipe: Recipe };
  records: StepRecord[];
  output: string;
}

/**
 * Runs `hpctrain train ...train` on `ranks` ranks of this machine (from 2 on, through the local
 * launcher) in a fresh run directory, read and removed when it ends; `what` names it in errors.
 */
export async function runHpctrain(ranks: number, train: readonly string[], what: string): Promise<HpctrainRun> {
  const runDir = mkdtempSync(join(tmpdir(), 'hpctrain-bench-run-'));
  try {
    const args = ['train', ...train, '--run-dir', runDir];
    const result = await execa(process.execPath, [CLI, ...(ranks > 1 ? ['launch', '-n', String(ranks), '--', ...args] : args)], { reject: false, all: true, stdin: 'ignore' });
    const output = String(result.all ?? '');
    if (result.exitCode !== 0) throw new HpctrainRunError(`hpctrain (${what}) exited ${result.exitCode ?? result.signal}:\n${tail(output)}`, output);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as HpctrainRun['summary'];
    return { summary, records: readStepCsv(join(runDir, 'metrics.csv')), output };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Debian's Python, which the PyTorch peers run on. */
export const PEER_PYTHON = '/usr/bin/python3';

/** Why a Python peer cannot run here (`modules` do not import), or undefined when it can. */
export async function whyNoPythonPeer(modules: string): Promise<string | undefined> {
  const python = await execa(PEER_PYTHON, ['-c', `import ${modules}`], { reject: false, timeout: 60_000, stdin: 'ignore' });
  if (!python.failed) return undefined;
  const last = String(python.stderr ?? '').trim().split('\n').pop();
  return `${PEER_PYTHON} -c 'import ${modules}' failed: ${last || python.shortMessage}`;
}

/**
 * Runs a PyTorch peer, `args` being its script and flags, with `threads` threads for OpenMP and
 * MKL (which read them as they load) and `env` besides, and returns its report: the last JSON
 * line of its stdout.
 */
export async function runTorchPeer(args: readonly string[], threads: number, what: string, extraEnv: Record<string, string> = {}): Promise<unknown> {
  const env = { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), ...extraEnv };
  const result = await execa(PEER_PYTHON, args, { reject: false, all: true, stdin: 'ignore', env });
  const line = String(result.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (result.exitCode !== 0 || !line) throw new BenchError(`the PyTorch peer (${what}) exited ${result.exitCode ?? result.signal}:\n${tail(result.all)}`);
  return JSON.parse(line);
}

/** A recipe as the flags of bench/peers/torch_learn.py's add_recipe_arguments, value by value, for `steps` steps. */
export function torchRecipeArgs(recipe: Recipe, steps: number): string[] {
  const o = recipe.optimizer;
  const s = recipe.schedule;
  return ['--steps', String(steps), '--optimizer', o.name, '--momentum', String(o.momentum), o.nesterov ? '--nesterov' : '--no-nesterov', '--rho', String(o.rho),
    '--beta1', String(o.beta1), '--beta2', String(o.beta2), '--epsilon', String(o.epsilon), '--weight-decay', String(o.weightDecay),
    '--learning-rate', String(s.peakRate), '--warmup-steps', String(s.warmupSteps), '--schedule', s.kind, '--decay-rate', String(s.decayRate),
    '--decay-epochs', String(s.decayEpochs), '--clip-norm', String(recipe.clipNorm), '--label-smoothing', String(recipe.labelSmoothing), '--ema-decay', String(recipe.emaDecay)];
}

/** A benchmark's entry point: its exit status, or a BenchError's message (any other error's stack) and status 1. */
export function runBench(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then((code) => process.exit(code), (error: unknown) => {
    process.stderr.write(`${error instanceof BenchError ? `error: ${error.message}` : String((error as Error).stack ?? error)}\n`);
    process.exit(1);
  });
}

/** runBench(main) when the module is the program itself (node dist/bench/x.js), not when a test imports it. */
export function runBenchIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(moduleUrl)) runBench(main);
}
