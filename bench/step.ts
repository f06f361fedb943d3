// The training-step benchmark: images per second of one Inception-V3 RMSProp step (forward,
// backward, update; random data, 1000 classes) for each backend, image size and batch, each
// configuration in a fresh process (bench/step-worker.ts), beside PyTorch on one thread doing the
// same step. One line per figure, and a CSV.
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';
import minimist from 'minimist';
import { BACKEND_NAMES, type BackendName } from '../src/backend/select.js';
import { BenchError, loadAverage, median, PEER_PYTHON, whyNoPythonPeer, parseCount, parseList, rejectUnknown, tail, writeCsv as writeCsvFile } from './figures.js';
import type { StepConfig, StepReport } from './step-worker.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/step.csv', import.meta.url));
const WORKER_PATH = fileURLToPath(new URL('./step-worker.js', import.meta.url));
const PEER_SCRIPT = fileURLToPath(new URL('../../bench/peers/torch_inception_step.py', import.meta.url));
const PYTHON = PEER_PYTHON;
const PEER = 'torch-cpu-1thread';
/** After a timeout, how long a child gets before SIGKILL. */
const KILL_GRACE_MS = 5000;
/** The pure-JS backend takes over a minute per step at 75x75, batch 2: its figure unless asked otherwise. */
const CPU_DEFAULTS = { sizes: [75], batches: [2], steps: 1 };

const HELP = `Usage: npm run bench:step -- [options]
       node dist/bench/step.js [options]

Times one Inception-V3 training step (forward, backward, RMSProp update; one batch of random
images, 1000 classes, label smoothing 0.1, no auxiliary head) and prints one line per figure:
  step backend=B batch=N size=S img_per_s=X step_ms=Y
step_ms is the median of the timed steps, after the warm-up steps; img_per_s = batch / step_ms.
Each configuration runs in a fresh process, so one that crashes or runs out of memory costs
only its own figure; a backend that does not load, and a wasm batch whose estimated step memory
is over the 4 GiB wasm heap, are skipped with the reason. At a size where a batch does not fit
on wasm, the largest batch that does (11 at 299x299) is run as well, so every size has a figure.

The cpu backend computes filter gradients in plain JavaScript, over a minute per step at 75x75:
unless --backend names it, it runs at size 75, batch 2, 1 timed step only, whatever --sizes,
--batches and --steps say. With --backend cpu, each of those three given applies to it too.

The peer, ${PEER}: bench/peers/torch_inception_step.py with ${PYTHON}: torchvision's
Inception-V3 on PyTorch with torch.set_num_threads(1) (and OMP_NUM_THREADS=MKL_NUM_THREADS=1),
the same step, at every --sizes x --batches; skipped, with the reason, when ${PYTHON} cannot
import torch and torchvision. Closing lines compare the fastest of ours with the peer at each
size and batch; where ours could not run the batch, at the largest batch that fits (ours_batch).

Options:
  --backend LIST     backends, comma-separated, of ${BACKEND_NAMES.join(', ')}   [wasm,cpu]
  --sizes LIST       image sizes, comma-separated, at least 75                      [75,139,299]
  --batches LIST     batch sizes, comma-separated                                    [8]
  --warmup N         untimed steps first (kernel set-up, allocator)                  [1]
  --steps N          timed steps                                                     [3]
  --timeout SECONDS  limit for each configuration; one over it is stopped and fails  [1800]
  --no-peer          do not run the PyTorch peer
  --csv PATH         where to write the CSV (backend, batch, size, img_per_s, step_ms, steps, date)
                     [bench/results/step.csv]
  --verbose          also print every step of every configuration, to stderr
  -h, --help         this text
`;

interface Plan {
  sizes: number[];
  batches: number[];
  steps: number;
}

interface BenchOptions {
  backends: BackendName[];
  plans: Map<BackendName, Plan>;
  peerPlan: Plan;
  warmup: number;
  timeoutMs: number;
  peer: boolean;
  csv: string;
  verbose: boolean;
}

interface Row {
  backend: string;
  batch: number;
  size: number;
  stepMs: number;
  steps: number;
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  const args = minimist(argv, {
    string: ['backend', 'sizes', 'batches', 'warmup', 'steps', 'timeout', 'csv'],
    boolean: ['help', 'peer', 'verbose'],
    alias: { h: 'help' },
    default: { peer: true },
    unknown: rejectUnknown,
  });
  if (args.help) return undefined;
  const backends = parseBackends(args.backend ?? 'wasm,cpu');
  const given: Plan = {
    sizes: parseList(args.sizes ?? '75,139,299', '--sizes', 75, 2048),
    batches: parseList(args.batches ?? '8', '--batches', 1, 4096),
    steps: parseCount(args.steps ?? '3', '--steps', 1, 1000),
  };
  // The cpu backend keeps its own small plan unless it was named and the option given.
  const cpuNamed = args.backend !== undefined;
  const cpuPlan: Plan = {
    sizes: cpuNamed && args.sizes !== undefined ? given.sizes : CPU_DEFAULTS.sizes,
    batches: cpuNamed && args.batches !== undefined ? given.batches : CPU_DEFAULTS.batches,
    steps: cpuNamed && args.steps !== undefined ? given.steps : CPU_DEFAULTS.steps,
  };
  return {
    backends,
    plans: new Map(backends.map((b) => [b, b === 'cpu' ? cpuPlan : given])),
    peerPlan: given,
    warmup: parseCount(args.warmup ?? '1', '--warmup', 0, 1000),
    timeoutMs: parseCount(args.timeout ?? '1800', '--timeout', 1, 86_400) * 1000,
    peer: args.peer as boolean,
    csv: resolve(args.csv ?? DEFAULT_CSV),
    verbose: args.verbose as boolean,
  };
}

function parseBackends(text: string): BackendName[] {
  const names = text.split(',').map((item) => item.trim());
  for (const name of names) {
    if (!(BACKEND_NAMES as readonly string[]).includes(name)) throw new BenchError(`--backend "${name}" is none of ${BACKEND_NAMES.join(', ')}`);
  }
  return [...new Set(names as BackendName[])];
}



async function main(options: BenchOptions): Promise<number> {
  const rows: Row[] = [];
  /** "backend size batch" of a wasm batch that does not fit -> the largest batch that does, run in its place. */
  const substitutes = new Map<string, number>();
  let failures = 0;
  const say = (row: Row): void => {
    rows.push(row);
    console.log(`step backend=${row.backend} batch=${row.batch} size=${row.size} img_per_s=${imgPerS(row).toFixed(2)} step_ms=${row.stepMs.toFixed(1)}`);
  };
  const fail = (what: string, error: unknown): void => {
    failures++;
    console.log(`step ${what} failed: ${error instanceof BenchError ? error.message : (error as Error).stack ?? String(error)}`);
  };
  console.log(`step when=start cpus=${cpus().length} load_avg=${loadAverage()}`);

  for (const backend of options.backends) {
    const plan = options.plans.get(backend)!;
    runs: for (const size of plan.sizes) {
      let largest: number | undefined;
      let tooBig = false;
      const batches = [...plan.batches];
      for (let i = 0; i < batches.length; i++) {
        const batch = batches[i]!;
        const what = `backend=${backend} batch=${batch} size=${size}`;
        let report: StepReport;
        try {
          report = await runWorker({ backend, batch, size, warmup: options.warmup, steps: plan.steps, seed: 1 }, options);
        } catch (error) {
          fail(what, error);
          continue;
        }
        if (report.kind === 'unavailable') {
          console.log(`step backend=${backend} skipped: ${report.reason}${report.fix ? `; ${report.fix}` : ''}`);
          break runs;
        }
        largest = report.largestBatch ?? largest;
        if (report.kind === 'too-big') {
          tooBig = true;
          if (report.largestBatch > 0) substitutes.set(`${backend} ${size} ${batch}`, report.largestBatch);
          console.log(`step ${what} skipped: ${report.reason}`);
        } else {
          say({ backend, batch, size, stepMs: median(report.stepMs), steps: report.stepMs.length });
        }
        if (i === batches.length - 1 && tooBig && largest !== undefined && largest > 0 && !batches.includes(largest)) batches.push(largest);
      }
    }
  }

  const noPeer = options.peer ? await whyNoPythonPeer('torch, torchvision') : 'disabled with --no-peer';
  if (noPeer) console.log(`step backend=${PEER} skipped: ${noPeer}`);
  const comparisons: string[] = [];
  for (const size of noPeer ? [] : options.peerPlan.sizes) {
    for (const batch of options.peerPlan.batches) {
      try {
        const peer = await runPeer(size, batch, options);
        say(peer);
        const line = compare(peer, rows, substitutes);
        if (line) comparisons.push(line);
      } catch (error) {
        fail(`backend=${PEER} batch=${batch} size=${size}`, error);
      }
    }
  }

  for (const line of comparisons) console.log(line);
  console.log(`step when=end cpus=${cpus().length} load_avg=${loadAverage()}`);
  writeCsv(options.csv, rows);
  return failures === 0 ? 0 : 1;
}

async function runWorker(config: StepConfig, options: BenchOptions): Promise<StepReport> {
  const result = await execa(process.execPath, [WORKER_PATH, JSON.stringify(config)], {
    stdin: 'ignore', stderr: options.verbose ? ['pipe', 'inherit'] : 'pipe',
    reject: false, timeout: options.timeoutMs, forceKillAfterDelay: KILL_GRACE_MS,
  });
  return lastJsonLine(result, `${WORKER_PATH} ${config.backend} batch=${config.batch} size=${config.size}`) as StepReport;
}

async function runPeer(size: number, batch: number, options: BenchOptions): Promise<Row> {
  const args = [PEER_SCRIPT, '--sizes', String(size), '--batches', String(batch), '--warmup', String(options.warmup), '--steps', String(options.peerPlan.steps)];
  const result = await execa(PYTHON, args, {
    // One thread for every library torch may hand work to, read when they load.
    env: { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    stdin: 'ignore', stderr: options.verbose ? ['pipe', 'inherit'] : 'pipe',
    reject: false, timeout: options.timeoutMs, forceKillAfterDelay: KILL_GRACE_MS,
  });
  if (options.verbose) process.stderr.write(`${PEER} batch=${batch} size=${size}: ${String(result.stdout).trim()}\n`);
  const report = lastJsonLine(result, `${PYTHON} ${args.join(' ')}`) as { step_ms: number; steps_ms: number[]; threads: number };
  if (report.threads !== 1) throw new BenchError(`the peer ran on ${report.threads} threads, not 1`);
  return { backend: PEER, batch, size, stepMs: report.step_ms, steps: report.steps_ms.length };
}

/** The child's report: the last line of its stdout, which must be JSON, from a child that exited 0. */
function lastJsonLine(result: Result, what: string): unknown {
  const stdout = String(result.stdout ?? '');
  if (result.failed) {
    const how = result.timedOut ? 'timed out' : result.exitCode === undefined ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
    throw new BenchError(`${what} ${how}\n  stdout:\n${tail(stdout)}\n  stderr:\n${tail(String(result.stderr ?? ''))}`);
  }
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new BenchError(`${what} printed no JSON report\n  stdout:\n${tail(stdout)}`);
  }
}

/** The fastest of ours at the peer's size and batch, or at the batch that stood in for it. */
function compare(peer: Row, rows: Row[], substitutes: Map<string, number>): string | undefined {
  const atSize = rows.filter((r) => r.backend !== PEER && r.size === peer.size);
  const sameBatch = atSize.filter((r) => r.batch === peer.batch);
  const candidates = sameBatch.length > 0 ? sameBatch : atSize.filter((r) => substitutes.get(`${r.backend} ${r.size} ${peer.batch}`) === r.batch);
  const ours = candidates.sort((a, b) => imgPerS(b) - imgPerS(a))[0];
  if (!ours) return undefined;
  const oursBatch = ours.batch === peer.batch ? '' : ` ours_batch=${ours.batch}`;
  return `step size=${peer.size} batch=${peer.batch} target=torch-1thread ours_img_per_s=${imgPerS(ours).toFixed(2)} ` +
    `peer_img_per_s=${imgPerS(peer).toFixed(2)} met=${imgPerS(ours) >= imgPerS(peer) ? 'yes' : 'no'}${oursBatch} ours_backend=${ours.backend}`;
}

function imgPerS(row: Row): number {
  return (row.batch * 1000) / row.stepMs;
}

function writeCsv(path: string, rows: Row[]): void {
  const date = new Date().toISOString();
  const records = rows.map((r) => ({ backend: r.backend, batch: r.batch, size: r.size, img_per_s: imgPerS(r).toFixed(2), step_ms: r.stepMs.toFixed(1), steps: r.steps, date }));
  writeCsvFile(path, ['backend', 'batch', 'size', 'img_per_s', 'step_ms', 'steps', 'date'], records);
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (!options) process.stdout.write(HELP);
  else process.exitCode = await main(options);
} catch (error) {
  const usage = error instanceof BenchError;
  process.stderr.write(`step bench FAILED: ${usage ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
