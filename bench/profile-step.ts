// The training-step profile: where one Inception-V3 step of one rank spends its time, kernel by
// kernel, at each image size, beside PyTorch's step on one thread op by op. Each size runs in a
// fresh process (bench/profile-step-worker.ts, bench/peers/torch_profile_step.py). One line per
// figure, and a CSV of every kernel and shape.
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';
import minimist from 'minimist';
import { BenchError, median, PEER_PYTHON, whyNoPythonPeer, parseCount, parseList, rejectUnknown, tail, writeCsv } from './figures.js';
import type { KernelFigure } from './kernel-timer.js';
import type { ProfileConfig, ProfileReport } from './profile-step-worker.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/profile-step.csv', import.meta.url));
const WORKER_PATH = fileURLToPath(new URL('./profile-step-worker.js', import.meta.url));
const PEER_SCRIPT = fileURLToPath(new URL('../../bench/peers/torch_profile_step.py', import.meta.url));
const PEER = 'torch-cpu-1thread';
const KILL_GRACE_MS = 5000;

const HELP = `Usage: node dist/bench/profile-step.js [options]
       taskset -c 1 node dist/bench/profile-step.js [options]   (one core, as single-thread figures need)

Profiles one Inception-V3 training step of one rank on the wasm backend (forward and backward
through computeGradients, then the RMSProp update; random data, 1000 classes) and prints:
  profile who=W size=S batch=N step_ms=X img_per_s=Y runs=...     plain steps, median
  profile who=W size=S phase=P wall_ms=X kernels_ms=Y js_ms=Z ...    per phase of a profiled step
  profile who=W size=S class=C ms=X share=Y                           op classes (conv forward, ...)
  profile who=W size=S phase=P kernel=K parent=Q impl=I ms=X calls=N  per kernel, all shapes
  profile who=W size=S phase=P kernel=K parent=Q shape="..." ms=X     the --top costliest shapes
A kernel's ms is its self time per step: without the kernels it called, which have lines of their
own with parent= the outermost kernel they ran in. impl=js marks hpctrain's kernels, whose self
time is JavaScript; readSync is dataSync's copy out of the heap. The phase's engine_ms is its wall
time less its kernels': tfjs's bookkeeping (tape, tidy, gradient functions).

The peer, ${PEER}: bench/peers/torch_profile_step.py with ${PEER_PYTHON}, the same step of
torchvision's Inception-V3 with torch.set_num_threads(1), op self times by torch.autograd.profiler
(aten:: ops; kernel= the op, parent= its autograd node). Skipped when torch does not import.

Options:
  --sizes LIST          image sizes, comma-separated                                  [75,139,299]
  --batch N             batch size                                                    [8]
  --warmup N            untimed steps first                                           [1]
  --steps N             plain timed steps (step_ms is their median)                   [3]
  --profiled-steps N    steps with every kernel timed (the profile is their mean)     [2]
  --top N               kernel+shape lines per size and framework                     [25]
  --timeout SECONDS     limit for each size                                           [1800]
  --no-peer             do not run the PyTorch peer
  --csv PATH            every figure as CSV                        [bench/results/profile-step.csv]
  --verbose             the workers' step lines, to stderr
  -h, --help            this text
`;

interface Options {
  sizes: number[];
  batch: number;
  warmup: number;
  steps: number;
  profiledSteps: number;
  top: number;
  timeoutMs: number;
  peer: boolean;
  csv: string;
  verbose: boolean;
}

/** What both frameworks report for one size. */
type Report = Pick<ProfileReport, 'batch' | 'size' | 'stepMs' | 'kernels' | 'loaded'> & { phaseMs: Record<string, number> };

/** hpctrain's kernels on wasm: their self time is JavaScript. */
const OWN_KERNELS = new Set(['HpcTrainBatchNormRelu', 'HpcTrainBatchNormReluGrad', 'HpcTrainBatchNormReluGradBeta', 'MaxPoolGrad', 'AvgPoolGrad', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Identity']);

function parseOptions(argv: string[]): Options | undefined {
  const args = minimist(argv, {
    string: ['sizes', 'batch', 'warmup', 'steps', 'profiled-steps', 'top', 'timeout', 'csv'],
    boolean: ['help', 'peer', 'verbose'],
    alias: { h: 'help' },
    default: { peer: true },
    unknown: rejectUnknown,
  });
  if (args.help) return undefined;
  return {
    sizes: parseList(args.sizes ?? '75,139,299', '--sizes', 75, 2048),
    batch: parseCount(args.batch ?? '8', '--batch', 1, 4096),
    warmup: parseCount(args.warmup ?? '1', '--warmup', 0, 1000),
    steps: parseCount(args.steps ?? '3', '--steps', 1, 1000),
    profiledSteps: parseCount(args['profiled-steps'] ?? '2', '--profiled-steps', 1, 1000),
    top: parseCount(args.top ?? '25', '--top', 0, 100_000),
    timeoutMs: parseCount(args.timeout ?? '1800', '--timeout', 1, 86_400) * 1000,
    peer: args.peer as boolean,
    csv: resolve(args.csv ?? DEFAULT_CSV),
    verbose: args.verbose as boolean,
  };
}

/**
 * The class of op a figure belongs to, named alike for both frameworks so that their lines can be
 * compared: convolutions forward and backward, batch norm with its ReLU, pooling, the rest.
 */
export function opClass(who: 'hpctrain' | 'torch', figure: KernelFigure): string {
  const { phase, kernel, parent } = figure;
  if (phase === 'update') return 'update';
  const op = who === 'torch' ? torchOpName(kernel, parent) : parent || kernel;
  const backward = phase === 'backward';
  if (who === 'hpctrain') {
    if (op === 'Conv2DBackpropFilter') return 'conv-filter-grad';
    if (op === 'Conv2DBackpropInput') return 'conv-input-grad';
    if (op === 'Conv2D' || op === 'FusedConv2D') return backward ? 'conv-backward-other' : 'conv-forward';
    if (op.startsWith('HpcTrainBatchNormRelu')) return backward ? 'batchnorm-relu-backward' : 'batchnorm-relu-forward';
    if (op === 'MaxPool' || op === 'AvgPool') return 'pool-forward';
    if (op === 'MaxPoolGrad' || op === 'AvgPoolGrad') return 'pool-backward';
    if (op === 'Concat') return 'concat';
    if (op === 'Slice' && backward) return 'concat-grad';
    if ((op === 'Add' || op === 'AddN') && backward) return 'grad-accumulate';
    if (op === 'readSync') return 'copy-out';
    return 'other';
  }
  if (/conv/i.test(op)) return backward ? 'conv-grad (filter+input)' : 'conv-forward';
  if (/batch_norm|BatchNorm|relu|threshold/i.test(op)) return backward ? 'batchnorm-relu-backward' : 'batchnorm-relu-forward';
  if (/pool/i.test(op)) return backward ? 'pool-backward' : 'pool-forward';
  if (/cat\b|CatBackward/.test(op)) return backward ? 'concat-grad' : 'concat';
  if (backward && /^aten::add_?$/.test(op)) return 'grad-accumulate';
  return 'other';
}

/** The op that stands for a torch figure: its autograd node in backward, else the op itself. */
function torchOpName(kernel: string, parent: string): string {
  const node = /evaluate_function: (\S+)/.exec(parent)?.[1];
  return node ?? (parent.startsWith('aten::') ? parent : kernel);
}

/** " gflop_s=X" for convolutions and matrix products. */
function rate(f: KernelFigure): string {
  return f.flops ? ` gflop_s=${(f.flops / f.selfMs / 1e6).toFixed(1)}` : '';
}

function sum(figures: readonly KernelFigure[]): number {
  return figures.reduce((total, f) => total + f.selfMs, 0);
}

function groupBy(figures: readonly KernelFigure[], key: (f: KernelFigure) => string): Map<string, KernelFigure[]> {
  const groups = new Map<string, KernelFigure[]>();
  for (const figure of figures) {
    const k = key(figure);
    groups.set(k, [...(groups.get(k) ?? []), figure]);
  }
  return groups;
}

interface CsvRecord {
  who: string; size: number; batch: number; line: string; phase: string; kernel: string; parent: string; impl: string; shape: string; calls: string; ms: string; gflop_s: string;
}

function printReport(who: 'hpctrain' | 'torch', report: Report, options: Options, csv: CsvRecord[]): void {
  const label = who === 'hpctrain' ? 'hpctrain-wasm' : PEER;
  const head = `profile who=${label} size=${report.size} batch=${report.batch}`;
  const stepMs = median(report.stepMs);
  const record = (line: string, fields: Partial<CsvRecord>): void => {
    csv.push({ who: label, size: report.size, batch: report.batch, line, phase: '', kernel: '', parent: '', impl: '', shape: '', calls: '', ms: '', gflop_s: '', ...fields });
  };
  console.log(`${head} step_ms=${stepMs.toFixed(1)} img_per_s=${(report.batch * 1000 / stepMs).toFixed(2)} runs=${report.stepMs.map((ms) => ms.toFixed(0)).join(',')}`);
  record('step', { ms: stepMs.toFixed(2) });
  const impl = (f: KernelFigure): string => (who === 'torch' ? 'native' : f.kernel === 'readSync' ? 'copy' : OWN_KERNELS.has(f.kernel) ? 'js' : 'wasm');

  const byPhase = groupBy(report.kernels, (f) => f.phase);
  for (const phase of ['forward', 'backward', 'update', 'other']) {
    const figures = byPhase.get(phase) ?? [];
    const wall = report.phaseMs[phase];
    const kernelsMs = sum(figures);
    const js = sum(figures.filter((f) => impl(f) === 'js'));
    const copy = sum(figures.filter((f) => impl(f) === 'copy'));
    const engine = wall === undefined ? '' : ` engine_ms=${(wall - kernelsMs).toFixed(1)}`;
    const split = who === 'hpctrain' ? ` js_ms=${js.toFixed(1)} wasm_ms=${(kernelsMs - js - copy).toFixed(1)} copy_ms=${copy.toFixed(1)}` : '';
    console.log(`${head} phase=${phase} wall_ms=${wall === undefined ? 'n/a' : wall.toFixed(1)} kernels_ms=${kernelsMs.toFixed(1)}${split}${engine}`);
    record('phase', { phase, ms: (wall ?? kernelsMs).toFixed(2) });
  }

  const total = sum(report.kernels);
  const classes = [...groupBy(report.kernels, (f) => opClass(who, f))].map(([name, figures]) => ({ name, ms: sum(figures) })).sort((a, b) => b.ms - a.ms);
  for (const { name, ms } of classes) {
    console.log(`${head} class=${name} ms=${ms.toFixed(1)} share=${(100 * ms / total).toFixed(1)}%`);
    record('class', { kernel: name, ms: ms.toFixed(2) });
  }

  const kernels = [...groupBy(report.kernels, (f) => `${f.phase}|${f.kernel}|${f.parent}`)]
    .map(([, figures]) => ({ ...figures[0]!, calls: figures.reduce((n, f) => n + f.calls, 0), selfMs: sum(figures), flops: figures.reduce((n, f) => n + (f.flops ?? 0), 0) }))
    .sort((a, b) => b.selfMs - a.selfMs);
  for (const f of kernels) {
    if (f.selfMs < 0.05) continue;
    console.log(`${head} phase=${f.phase} kernel=${f.kernel} parent=${f.parent || '-'} impl=${impl(f)} ms=${f.selfMs.toFixed(1)} calls=${f.calls} share=${(100 * f.selfMs / total).toFixed(1)}%${rate(f)}`);
    record('kernel', { phase: f.phase, kernel: f.kernel, parent: f.parent, impl: impl(f), calls: String(f.calls), ms: f.selfMs.toFixed(3), gflop_s: rate(f).replace(' gflop_s=', '') });
  }
  const shapes = [...report.kernels].sort((a, b) => b.selfMs - a.selfMs);
  for (const [i, f] of shapes.entries()) {
    if (i < options.top) console.log(`${head} phase=${f.phase} kernel=${f.kernel} parent=${f.parent || '-'} shape="${f.shape}" ms=${f.selfMs.toFixed(1)} calls=${f.calls}${rate(f)}`);
    record('shape', { phase: f.phase, kernel: f.kernel, parent: f.parent, impl: impl(f), shape: f.shape, calls: String(f.calls), ms: f.selfMs.toFixed(3), gflop_s: rate(f).replace(' gflop_s=', '') });
  }
}

async function runChild(command: string, args: string[], what: string, options: Options, env?: Record<string, string>): Promise<unknown> {
  const result = await execa(command, args, {
    env, stdin: 'ignore', stderr: options.verbose ? ['pipe', 'inherit'] : 'pipe',
    reject: false, timeout: options.timeoutMs, forceKillAfterDelay: KILL_GRACE_MS,
  });
  return lastJsonLine(result, what);
}

function lastJsonLine(result: Result, what: string): unknown {
  const stdout = String(result.stdout ?? '');
  if (result.failed) {
    const how = result.timedOut ? 'timed out' : result.exitCode === undefined ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
    throw new BenchError(`${what} ${how}\n  stdout:\n${tail(stdout)}\n  stderr:\n${tail(String(result.stderr ?? ''))}`);
  }
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new BenchError(`${what} printed no JSON report\n  stdout:\n${tail(stdout)}`);
  }
}

async function main(options: Options): Promise<number> {
  const csv: CsvRecord[] = [];
  let failures = 0;
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(',');
  console.log(`profile when=start cpus=${cpus().length} load_avg=${load()}`);
  const noPeer = options.peer ? await whyNoPythonPeer('torch, torchvision') : 'disabled with --no-peer';
  if (noPeer) console.log(`profile who=${PEER} skipped: ${noPeer}`);
  const img = new Map<string, number>();
  for (const size of options.sizes) {
    const config: ProfileConfig = { backend: 'wasm', batch: options.batch, size, warmup: options.warmup, steps: options.steps, profiledSteps: options.profiledSteps, seed: 1 };
    try {
      const report = await runChild(process.execPath, [WORKER_PATH, JSON.stringify(config)], `${WORKER_PATH} size=${size}`, options) as ProfileReport;
      printReport('hpctrain', report, options, csv);
      img.set(`hpctrain ${size}`, options.batch * 1000 / median(report.stepMs));
    } catch (error) {
      failures++;
      console.log(`profile who=hpctrain-wasm size=${size} failed: ${error instanceof BenchError ? error.message : (error as Error).stack}`);
    }
    if (noPeer) continue;
    try {
      const args = [PEER_SCRIPT, '--sizes', String(size), '--batch', String(options.batch), '--warmup', String(options.warmup),
        '--steps', String(options.steps), '--profiled-steps', String(Math.min(options.profiledSteps, 1))];
      const report = await runChild(PEER_PYTHON, args, `${PEER_PYTHON} ${args.join(' ')}`, options,
        { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' }) as Report & { threads: number };
      if (report.threads !== 1) throw new BenchError(`the peer ran on ${report.threads} threads, not 1`);
      printReport('torch', report, options, csv);
      img.set(`torch ${size}`, options.batch * 1000 / median(report.stepMs));
    } catch (error) {
      failures++;
      console.log(`profile who=${PEER} size=${size} failed: ${error instanceof BenchError ? error.message : (error as Error).stack}`);
    }
  }
  for (const size of options.sizes) {
    const ours = img.get(`hpctrain ${size}`);
    const peer = img.get(`torch ${size}`);
    if (ours !== undefined && peer !== undefined) {
      console.log(`profile size=${size} batch=${options.batch} hpctrain_img_per_s=${ours.toFixed(2)} torch_img_per_s=${peer.toFixed(2)} ratio=${(ours / peer).toFixed(2)}`);
    }
  }
  console.log(`profile when=end cpus=${cpus().length} load_avg=${load()}`);
  writeCsv(options.csv, ['who', 'size', 'batch', 'line', 'phase', 'kernel', 'parent', 'impl', 'shape', 'calls', 'ms', 'gflop_s'], csv as unknown as Record<string, unknown>[]);
  return failures === 0 ? 0 : 1;
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (!options) process.stdout.write(HELP);
  else process.exitCode = await main(options);
} catch (error) {
  process.stderr.write(`profile bench FAILED: ${error instanceof BenchError ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
