// The node benchmark: the training throughput of one node. At each image size, hpctrain train on
// all of the node's cores in each split of them into ranks x compute threads (the ranks through
// the local launcher, the global batch shared between them), PyTorch on the same cores
// (bench/peers/torch_node.py) with the same batch, recipe and synthetic data, and hpctrain's
// scaling from 1 to all the cores as compute threads of one rank. Steady state: the first steps
// are left out. One line per figure, a target line per size, and a CSV.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import type { StepRecord } from '../src/metrics/csv.js';
import type { Recipe } from '../src/train/recipe.js';
import {
  BenchError, HpctrainRunError, loadAverage, median, parseCount, parseList, PEER_PYTHON, rejectUnknown, runBench, runHpctrain, runTorchPeer, torchRecipeArgs, whyNoPythonPeer, writeCsv,
} from './figures.js';

const PEER = fileURLToPath(new URL('../../bench/peers/torch_node.py', import.meta.url));
const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/node.csv', import.meta.url));
/** hpctrain's refusal of a batch whose step does not fit in the wasm heap (src/compute/memory.ts): a limit, not a failure. */
const WASM_REFUSAL = /error: (.*of wasm memory.*)/;

const HELP = `Usage: npm run bench:node -- [options]
       node dist/bench/node.js [options]

The training throughput of one node (Inception-V3, synthetic data: one random batch trained on at
every step, the default recipe: AdamW). At each image size, with the same global batch:
  - hpctrain on all --cores, in every split of them into ranks x compute threads (1x2 and 2x1
    on 2 cores; the divisors on more), each rank with global batch / ranks images;
  - PyTorch 1.13 (bench/peers/torch_node.py: torchvision's Inception-V3, no auxiliary head,
    torch.set_num_threads(cores)) with hpctrain's recipe value by value (summary.json); skipped,
    with the reason, when ${PEER_PYTHON} cannot import torch and torchvision;
  - hpctrain's scaling: one rank with 1, 2, ... --cores compute threads (the last is the 1xcores
    split's run).
Every run trains --warmup + --steps steps (hpctrain one more: its last step also captures the
optimizer's state for the final checkpoint); img_per_s is the images of the --steps timed steps
over their time, step_ms their mean, data_share and comm_share hpctrain's time waiting for the
input and in the exchange (with the update). One line per figure:
  node impl=hpctrain cores=2 ranks=1 threads=2 size=139 batch=16 img_per_s=X step_ms=Y data_share=D comm_share=C
  node impl=torch cores=2 threads=2 size=139 batch=16 img_per_s=X step_ms=Y
  node scaling impl=hpctrain size=139 threads=1 img_per_s=X speedup=S efficiency=E
and per size the target, hpctrain's best split at least PyTorch:
  node target=at-least-torch size=139 ours=X best_split=1x2 peer=Y ratio=X/Y met=yes|no
A batch that does not fit in the wasm heap (16 at 299 on one thread) is skipped with hpctrain's
reason. The CSV has a row per run: hpctrain's splits (ranks x threads = cores), its scaling (one
rank, fewer threads) and PyTorch's.

Options:
  --sizes LIST   image sizes, comma-separated, at least 75                   [75,139,299]
  --batch B      global batch, per step                                              [16]
  --classes N    classes of the synthetic data and the model                       [1000]
  --cores N      the node's cores (os.availableParallelism())${`[${availableParallelism()}]`.padStart(28)}
  --warmup N     first steps of each run left out (kernel set-up, allocation)         [1]
  --steps N      timed steps of each run                                              [4]
  --no-peer      hpctrain only
  --no-scaling   the splits (and the peer) only
  --csv PATH     [bench/results/node.csv]
  -h, --help
`;

interface Settings {
  sizes: number[];
  batch: number;
  classes: number;
  cores: number;
  warmup: number;
  steps: number;
  csv: string;
}

/** One run's steady state, over its timed steps. */
interface Figure {
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

/** A configuration's run, or why it has none. */
type Outcome = { figure: Figure; recipe: Recipe } | { skipped: string };

async function main(argv: string[]): Promise<number> {
  const args = minimist(argv, {
    string: ['sizes', 'batch', 'classes', 'cores', 'warmup', 'steps', 'csv'],
    boolean: ['help', 'peer', 'scaling'], default: { peer: true, scaling: true }, alias: { h: 'help' }, unknown: rejectUnknown,
  });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const s: Settings = {
    sizes: parseList(args.sizes ?? '75,139,299', '--sizes', 75, 2048),
    batch: parseCount(args.batch ?? '16', '--batch', 1, 4096),
    classes: parseCount(args.classes ?? '1000', '--classes', 2, 100_000),
    cores: parseCount(args.cores ?? String(availableParallelism()), '--cores', 1, 1024),
    warmup: parseCount(args.warmup ?? '1', '--warmup', 0, 1000),
    steps: parseCount(args.steps ?? '4', '--steps', 1, 10_000),
    csv: resolve(args.csv ?? DEFAULT_CSV),
  };
  const noPeer = args.peer === false ? 'disabled with --no-peer' : await whyNoPythonPeer('torch, torchvision, numpy, PIL');
  console.log(`node when=start cores=${s.cores} cpus=${availableParallelism()} load_avg=${loadAverage()}`);
  if (noPeer) console.log(`node impl=torch skipped: ${noPeer}`);
  const figures: Figure[] = [];
  let failures = 0;
  for (const size of s.sizes) {
    const runs = new Map<string, Outcome | undefined>();
    /** hpctrain with `ranks` x `threads` at this size, run once however often it is asked for; undefined when it failed. */
    const hpctrainAt = async (ranks: number, threads: number): Promise<Outcome | undefined> => {
      const key = `${ranks}x${threads}`;
      if (!runs.has(key)) {
        const outcome = await measureHpctrain(s, size, ranks, threads).catch((error: unknown) => {
          failures++;
          console.log(`node impl=hpctrain cores=${s.cores} ranks=${ranks} threads=${threads} size=${size} batch=${s.batch} failed: ${messageOf(error)}`);
          return undefined;
        });
        if (outcome && 'figure' in outcome) figures.push(outcome.figure);
        runs.set(key, outcome);
      }
      return runs.get(key);
    };

    const splits: Figure[] = [];
    let recipe: Recipe | undefined;
    for (const { ranks, threads } of splitsOf(s.cores)) {
      const outcome = await hpctrainAt(ranks, threads);
      if (!outcome) continue;
      const what = `node impl=hpctrain cores=${s.cores} ranks=${ranks} threads=${threads} size=${size} batch=${s.batch}`;
      if ('skipped' in outcome) {
        console.log(`${what} skipped: ${outcome.skipped}`);
        continue;
      }
      const f = outcome.figure;
      splits.push(f);
      recipe ??= outcome.recipe;
      console.log(`${what} img_per_s=${f.imagesPerSecond.toFixed(3)} step_ms=${f.meanStepMs.toFixed(0)} data_share=${f.dataShare!.toFixed(3)} comm_share=${f.commShare!.toFixed(3)}`);
    }

    let peer: Figure | undefined;
    if (!noPeer) {
      const what = `node impl=torch cores=${s.cores} threads=${s.cores} size=${size} batch=${s.batch}`;
      if (!recipe) console.log(`${what} skipped: no hpctrain run at this size to take the recipe from`);
      else {
        try {
          peer = await measureTorch(s, size, recipe);
          figures.push(peer);
          console.log(`${what} img_per_s=${peer.imagesPerSecond.toFixed(3)} step_ms=${peer.meanStepMs.toFixed(0)}`);
        } catch (error) {
          failures++;
          console.log(`${what} failed: ${messageOf(error)}`);
        }
      }
    }

    if (args.scaling !== false) {
      let single: number | undefined;
      for (let threads = 1; threads <= s.cores; threads++) {
        const outcome = await hpctrainAt(1, threads);
        if (!outcome) continue;
        const what = `node scaling impl=hpctrain size=${size} threads=${threads}`;
        if ('skipped' in outcome) {
          console.log(`${what} skipped: ${outcome.skipped}`);
          continue;
        }
        const rate = outcome.figure.imagesPerSecond;
        if (threads === 1) single = rate;
        const speedup = single ? ` speedup=${(rate / single).toFixed(2)} efficiency=${(rate / single / threads).toFixed(2)}` : '';
        console.log(`${what} img_per_s=${rate.toFixed(3)}${speedup}`);
      }
    }

    const best = splits.sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
    if (best && peer) {
      const ratio = best.imagesPerSecond / peer.imagesPerSecond;
      console.log(`node target=at-least-torch size=${size} ours=${best.imagesPerSecond.toFixed(3)} best_split=${best.ranks}x${best.threads} ` +
        `peer=${peer.imagesPerSecond.toFixed(3)} ratio=${ratio.toFixed(2)} met=${ratio >= 1 ? 'yes' : 'no'}`);
    } else {
      console.log(`node target=at-least-torch size=${size} skipped: ${best ? 'no PyTorch figure' : 'no hpctrain split ran'}`);
    }
  }
  console.log(`node when=end cores=${s.cores} cpus=${availableParallelism()} load_avg=${loadAverage()}`);
  writeFigures(s, figures);
  console.log(`node csv=${s.csv}`);
  return failures === 0 ? 0 : 1;
}

/** Every ranks x threads that multiplies to the cores, by ranks. */
function splitsOf(cores: number): { ranks: number; threads: number }[] {
  const splits = [];
  for (let ranks = 1; ranks <= cores; ranks++) if (cores % ranks === 0) splits.push({ ranks, threads: cores / ranks });
  return splits;
}

async function measureHpctrain(s: Settings, size: number, ranks: number, threads: number): Promise<Outcome> {
  if (s.batch % ranks !== 0) return { skipped: `the global batch of ${s.batch} does not split evenly over ${ranks} ranks` };
  const rankBatch = s.batch / ranks;
  if (threads > rankBatch) return { skipped: `${threads} compute threads would share ${rankBatch} images` };
  const total = s.warmup + s.steps + 1;
  const train = ['--data', 'synthetic', '--image-size', String(size), '--batch-size', String(rankBatch), '--num-classes', String(s.classes),
    '--compute-threads', String(threads), '--steps', String(total), '--eval-batches', '0', '--checkpoint-minutes', '0', '--log-every', String(total)];
  try {
    const { summary, records } = await runHpctrain(ranks, train, `${ranks}x${threads} at ${size}`);
    if (records.length !== total) throw new BenchError(`hpctrain (${ranks}x${threads} at ${size}) recorded ${records.length} steps, not ${total}`);
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

/** The peer on all the cores, with hpctrain's recipe at this size and batch. */
async function measureTorch(s: Settings, size: number, recipe: Recipe): Promise<Figure> {
  const args = [PEER, '--image-size', String(size), '--batch-size', String(s.batch), '--classes', String(s.classes), '--threads', String(s.cores),
    '--skip', String(s.warmup), '--steps-per-epoch', String(recipe.schedule.stepsPerEpoch), ...torchRecipeArgs(recipe, s.warmup + s.steps)];
  const report = await runTorchPeer(args, s.cores, `${s.cores} threads at ${size}`) as TorchReport;
  if (report.threads !== s.cores) throw new BenchError(`the PyTorch peer ran on ${report.threads} threads, not ${s.cores}`);
  return { impl: 'torch', size, ranks: 1, threads: s.cores, imagesPerSecond: report.img_per_s, meanStepMs: report.step_ms_mean, medianStepMs: report.step_ms_median };
}

function writeFigures(s: Settings, figures: readonly Figure[]): void {
  const date = new Date().toISOString();
  const share = (value: number | undefined) => (value === undefined ? '' : value.toFixed(4));
  writeCsv(s.csv, ['impl', 'cores', 'ranks', 'threads', 'size', 'batch', 'classes', 'warmup', 'steps', 'img_per_s', 'step_ms', 'step_ms_median', 'data_share', 'comm_share', 'date'],
    figures.map((f) => ({
      impl: f.impl, cores: s.cores, ranks: f.ranks, threads: f.threads, size: f.size, batch: s.batch, classes: s.classes, warmup: s.warmup, steps: s.steps,
      img_per_s: f.imagesPerSecond.toFixed(4), step_ms: f.meanStepMs.toFixed(1), step_ms_median: f.medianStepMs.toFixed(1),
      data_share: share(f.dataShare), comm_share: share(f.commShare), date,
    })));
}

function messageOf(error: unknown): string {
  return error instanceof BenchError ? error.message : String((error as Error).stack ?? error);
}

runBench(main);
