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
import type { Recipe } from '../src/train/recipe.js';
import { BenchError, loadAverage, parseCount, parseList, PEER_PYTHON, rejectUnknown, runBench, whyNoPythonPeer, writeCsv } from './figures.js';
import { type Figure, measureHpctrain, measureTorch, OMP_WAIT, type OmpWait, type Outcome, type RunSettings, splitsOf } from './node-runs.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/node.csv', import.meta.url));

const HELP = `Usage: npm run bench:node -- [options]
       node dist/bench/node.js [options]

The training throughput of one node (Inception-V3, synthetic data: one random batch trained on at
every step, the default recipe: AdamW). At each image size, with the same global batch:
  - hpctrain on all --cores, in every split of them into ranks x compute threads (1x2 and 2x1
    on 2 cores; the divisors on more), each rank with global batch / ranks images;
  - PyTorch 1.13 (bench/peers/torch_node.py: torchvision's Inception-V3, no auxiliary head,
    torch.set_num_threads(cores)) with hpctrain's recipe value by value (summary.json), its
    OpenMP threads sleeping at barriers as hpctrain's compute threads do (--peer-omp-wait:
    spinning ones lose a time slice at each barrier on a machine shared with other jobs);
    skipped, with the reason, when ${PEER_PYTHON} cannot import torch and torchvision;
  - hpctrain's scaling: one rank with 1, 2, ... --cores compute threads (the last is the 1xcores
    split's run).
Every run trains --warmup + --steps steps (hpctrain one more: its last step also captures the
optimizer's state for the final checkpoint); img_per_s is the images of the --steps timed steps
over their time, step_ms their mean, data_share and comm_share hpctrain's time waiting for the
input and in the exchange (with the update). One line per figure:
  node impl=hpctrain cores=2 ranks=1 threads=2 size=139 batch=16 img_per_s=X step_ms=Y data_share=D comm_share=C
  node impl=torch cores=2 threads=2 size=139 batch=16 img_per_s=X step_ms=Y omp_wait=passive
  node scaling impl=hpctrain size=139 threads=1 img_per_s=X speedup=S efficiency=E
and per size the target, hpctrain's best split at least PyTorch:
  node target=at-least-torch size=139 ours=X best_split=1x2 peer=Y ratio=X/Y met=yes|no
A batch that does not fit in the wasm heap (16 at 299 on one thread) is skipped with hpctrain's
reason. The CSV has a row per run: hpctrain's splits (ranks x threads = cores), its scaling (one
rank, fewer threads) and PyTorch's.

Options:
  --sizes LIST            image sizes, comma-separated, at least 75          [75,139,299]
  --batch B               global batch, per step                                     [16]
  --classes N             classes of the synthetic data and the model              [1000]
  --cores N               the node's cores (os.availableParallelism())${`[${availableParallelism()}]`.padStart(20)}
  --warmup N              first steps of each run left out (kernel set-up)            [1]
  --steps N               timed steps of each run                                     [5]
  --peer-omp-wait POLICY  the peer's OMP_WAIT_POLICY: passive, active, or inherit
                          (the environment's, else OpenMP's own: spin a while)  [passive]
  --no-peer               hpctrain only
  --no-scaling            the splits (and the peer) only
  --csv PATH              [bench/results/node.csv]
  -h, --help
`;

interface Settings extends RunSettings {
  sizes: number[];
  scaling: boolean;
  /** Why the peer does not run, or undefined. */
  noPeer: string | undefined;
  csv: string;
}

async function main(argv: string[]): Promise<number> {
  const s = await parseSettings(argv);
  if (!s) {
    process.stdout.write(HELP);
    return 0;
  }
  console.log(`node when=start cores=${s.cores} cpus=${availableParallelism()} load_avg=${loadAverage()}`);
  if (s.noPeer) console.log(`node impl=torch skipped: ${s.noPeer}`);
  const figures: Figure[] = [];
  let failures = 0;
  for (const size of s.sizes) {
    const bench = new SizeBench(s, size);
    const { splits, recipe } = await bench.splits();
    const peer = s.noPeer ? undefined : await bench.peer(recipe);
    if (s.scaling) await bench.scaling();
    printTarget(size, splits, peer);
    figures.push(...bench.figures);
    failures += bench.failures;
  }
  console.log(`node when=end cores=${s.cores} cpus=${availableParallelism()} load_avg=${loadAverage()}`);
  writeFigures(s, figures);
  console.log(`node csv=${s.csv}`);
  return failures === 0 ? 0 : 1;
}

async function parseSettings(argv: string[]): Promise<Settings | undefined> {
  const args = minimist(argv, {
    string: ['sizes', 'batch', 'classes', 'cores', 'warmup', 'steps', 'peer-omp-wait', 'csv'],
    boolean: ['help', 'peer', 'scaling'], default: { peer: true, scaling: true }, alias: { h: 'help' }, unknown: rejectUnknown,
  });
  if (args.help) return undefined;
  const ompWait = String(args['peer-omp-wait'] ?? 'passive');
  if (!(OMP_WAIT as readonly string[]).includes(ompWait)) throw new BenchError(`--peer-omp-wait "${ompWait}" is none of ${OMP_WAIT.join(', ')}`);
  return {
    sizes: parseList(args.sizes ?? '75,139,299', '--sizes', 75, 2048),
    batch: parseCount(args.batch ?? '16', '--batch', 1, 4096),
    classes: parseCount(args.classes ?? '1000', '--classes', 2, 100_000),
    cores: parseCount(args.cores ?? String(availableParallelism()), '--cores', 1, 1024),
    warmup: parseCount(args.warmup ?? '1', '--warmup', 0, 1000),
    steps: parseCount(args.steps ?? '5', '--steps', 1, 10_000),
    ompWait: ompWait as OmpWait,
    scaling: args.scaling !== false,
    noPeer: args.peer === false ? 'disabled with --no-peer' : await whyNoPythonPeer('torch, torchvision, numpy, PIL'),
    csv: resolve(args.csv ?? DEFAULT_CSV),
  };
}

/** The runs at one image size, printed as they end; an hpctrain configuration runs once, however many figures use it. */
class SizeBench {
  readonly figures: Figure[] = [];
  failures = 0;
  private readonly runs = new Map<string, Outcome | undefined>();

  constructor(private readonly s: Settings, private readonly size: number) {}

  /** Every split of the cores into ranks x threads: the figures of those that ran, and the recipe they trained with. */
  async splits(): Promise<{ splits: Figure[]; recipe: Recipe | undefined }> {
    const splits: Figure[] = [];
    let recipe: Recipe | undefined;
    for (const { ranks, threads } of splitsOf(this.s.cores)) {
      const what = `node impl=hpctrain cores=${this.s.cores} ranks=${ranks} threads=${threads} size=${this.size} batch=${this.s.batch}`;
      const run = await this.ran(ranks, threads, what);
      if (!run) continue;
      const f = run.figure;
      splits.push(f);
      recipe ??= run.recipe;
      console.log(`${what} img_per_s=${f.imagesPerSecond.toFixed(3)} step_ms=${f.meanStepMs.toFixed(0)} data_share=${f.dataShare!.toFixed(3)} comm_share=${f.commShare!.toFixed(3)}`);
    }
    return { splits, recipe };
  }

  /** PyTorch on all the cores, with the recipe hpctrain trained with. */
  async peer(recipe: Recipe | undefined): Promise<Figure | undefined> {
    const what = `node impl=torch cores=${this.s.cores} threads=${this.s.cores} size=${this.size} batch=${this.s.batch}`;
    if (!recipe) {
      console.log(`${what} skipped: no hpctrain run at this size to take the recipe from`);
      return undefined;
    }
    try {
      const peer = await measureTorch(this.s, this.size, recipe);
      this.figures.push(peer);
      console.log(`${what} img_per_s=${peer.imagesPerSecond.toFixed(3)} step_ms=${peer.meanStepMs.toFixed(0)} omp_wait=${this.s.ompWait}`);
      return peer;
    } catch (error) {
      this.failures++;
      console.log(`${what} failed: ${messageOf(error)}`);
      return undefined;
    }
  }

  /** One rank with 1, 2, ... cores compute threads, against 1. */
  async scaling(): Promise<void> {
    let single: number | undefined;
    for (let threads = 1; threads <= this.s.cores; threads++) {
      const what = `node scaling impl=hpctrain size=${this.size} threads=${threads}`;
      const run = await this.ran(1, threads, what);
      if (!run) continue;
      const rate = run.figure.imagesPerSecond;
      if (threads === 1) single = rate;
      const speedup = single ? ` speedup=${(rate / single).toFixed(2)} efficiency=${(rate / single / threads).toFixed(2)}` : '';
      console.log(`${what} img_per_s=${rate.toFixed(3)}${speedup}`);
    }
  }

  /** The configuration's run, or undefined when it has none: skipped (said on a line starting with `what`) or failed. */
  private async ran(ranks: number, threads: number, what: string): Promise<{ figure: Figure; recipe: Recipe } | undefined> {
    const outcome = await this.hpctrain(ranks, threads);
    if (outcome && 'skipped' in outcome) console.log(`${what} skipped: ${outcome.skipped}`);
    return outcome && 'figure' in outcome ? outcome : undefined;
  }

  /** The configuration's outcome, run the first time it is asked for; undefined when it failed (said on a line). */
  private async hpctrain(ranks: number, threads: number): Promise<Outcome | undefined> {
    const key = `${ranks}x${threads}`;
    if (!this.runs.has(key)) {
      const outcome = await measureHpctrain(this.s, this.size, ranks, threads).catch((error: unknown) => {
        this.failures++;
        console.log(`node impl=hpctrain cores=${this.s.cores} ranks=${ranks} threads=${threads} size=${this.size} batch=${this.s.batch} failed: ${messageOf(error)}`);
        return undefined;
      });
      if (outcome && 'figure' in outcome) this.figures.push(outcome.figure);
      this.runs.set(key, outcome);
    }
    return this.runs.get(key);
  }
}

/** hpctrain's best split at least PyTorch on the same cores. */
function printTarget(size: number, splits: readonly Figure[], peer: Figure | undefined): void {
  const best = [...splits].sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  if (!best || !peer) {
    console.log(`node target=at-least-torch size=${size} skipped: ${best ? 'no PyTorch figure' : 'no hpctrain split ran'}`);
    return;
  }
  const ratio = best.imagesPerSecond / peer.imagesPerSecond;
  console.log(`node target=at-least-torch size=${size} ours=${best.imagesPerSecond.toFixed(3)} best_split=${best.ranks}x${best.threads} ` +
    `peer=${peer.imagesPerSecond.toFixed(3)} ratio=${ratio.toFixed(2)} met=${ratio >= 1 ? 'yes' : 'no'}`);
}

function writeFigures(s: Settings, figures: readonly Figure[]): void {
  const date = new Date().toISOString();
  const share = (value: number | undefined) => (value === undefined ? '' : value.toFixed(4));
  writeCsv(s.csv, ['impl', 'cores', 'ranks', 'threads', 'size', 'batch', 'classes', 'warmup', 'steps', 'img_per_s', 'step_ms', 'step_ms_median', 'data_share', 'comm_share', 'omp_wait', 'date'],
    figures.map((f) => ({
      impl: f.impl, cores: s.cores, ranks: f.ranks, threads: f.threads, size: f.size, batch: s.batch, classes: s.classes, warmup: s.warmup, steps: s.steps,
      img_per_s: f.imagesPerSecond.toFixed(4), step_ms: f.meanStepMs.toFixed(1), step_ms_median: f.medianStepMs.toFixed(1),
      data_share: share(f.dataShare), comm_share: share(f.commShare), omp_wait: f.impl === 'torch' ? s.ompWait : '', date,
    })));
}

function messageOf(error: unknown): string {
  return error instanceof BenchError ? error.message : String((error as Error).stack ?? error);
}

runBench(main);
