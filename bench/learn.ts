// The learning benchmark: does a run learn, and as well as PyTorch with the same recipe? On a
// generated dataset with structure to learn (hpctrain dataset shapes) or a directory given,
// hpctrain trains through the local launcher and torchvision's Inception-V3 trains in PyTorch
// (bench/peers/torch_learn.py, one process), with the same effective recipe (read back from
// hpctrain's summary.json), global batch, steps, image size and seed, one after the other.
// One line per run and per target, and a CSV.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import { writeShapesDataset } from '../src/data/shapes.js';
import type { Recipe } from '../src/train/recipe.js';
import { BenchError, type HpctrainRun, parseCount, PEER_PYTHON, rejectUnknown, runBench, runHpctrain, runTorchPeer, tail, torchRecipeArgs, whyNoPythonPeer, writeCsv } from './figures.js';

const PEER = fileURLToPath(new URL('../../bench/peers/torch_learn.py', import.meta.url));
const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/learn.csv', import.meta.url));
const RECIPES = ['default', 'inception-paper'];

const HELP = `Usage: npm run bench:learn -- [options]
       node dist/bench/learn.js [options]

Trains hpctrain (--ranks ranks through the local launcher) and PyTorch 1.13 (torchvision's
Inception-V3, one process with --threads threads; skipped with the reason when ${PEER_PYTHON}
cannot import torch) on the same dataset with the same recipe, global batch, steps, image size
and seed, for each recipe, and prints one line per run:
  learn impl=hpctrain recipe=default top1=0.71 top5=0.98 img_per_s=8.40 steps=184
then, per recipe, the target of hpctrain's top-1 at least PyTorch's (the better of the trained
weights and their moving average, when there is one: top1_ema), and for the default recipe that
of a top-1 well above chance (at least 3 x 1/classes).

Options:
  --recipes LIST            comma-separated                              [${RECIPES.join(',')}]
  --data DIR                an ILSVRC2012-layout directory    [a generated shapes dataset]
  --classes N               generated: classes                                         [10]
  --train-per-class N       generated                                                 [150]
  --validation-per-class N  generated                                                  [30]
  --image-size S            training and evaluation size                               [75]
  --batch-size B            per hpctrain worker; PyTorch takes B x ranks               [16]
  --ranks N                 hpctrain ranks                                              [2]
  --epochs E                steps = E x floor(training images / global batch)           [4]
  --steps N                 instead of --epochs
  --seed S                  weights, data order, crops                                  [1]
  --threads N               PyTorch's threads                                           [2]
  --no-peer                 hpctrain only
  --csv PATH                [bench/results/learn.csv]
  -h, --help
`;

interface Run {
  impl: 'hpctrain' | 'torch';
  recipe: string;
  top1: number;
  top5: number;
  top1Ema: number | undefined;
  top5Ema: number | undefined;
  imagesPerSecond: number;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
}

interface Settings {
  data: string;
  classes: number;
  imageSize: number;
  batchSize: number;
  ranks: number;
  steps: number;
  seed: number;
  threads: number;
}

async function main(argv: string[]): Promise<number> {
  const args = minimist(argv, {
    string: ['recipes', 'data', 'classes', 'train-per-class', 'validation-per-class', 'image-size', 'batch-size', 'ranks', 'epochs', 'steps', 'seed', 'threads', 'csv'],
    boolean: ['help', 'peer'], default: { peer: true }, alias: { h: 'help' }, unknown: rejectUnknown,
  });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const recipes = String(args.recipes ?? RECIPES.join(',')).split(',');
  for (const recipe of recipes) if (!RECIPES.includes(recipe)) throw new BenchError(`--recipes: "${recipe}" is not one of ${RECIPES.join(', ')}`);
  const imageSize = parseCount(args['image-size'] ?? '75', '--image-size', 75, 299);
  const batchSize = parseCount(args['batch-size'] ?? '16', '--batch-size', 1, 256);
  const ranks = parseCount(args.ranks ?? '2', '--ranks', 1, 16);
  const seed = parseCount(args.seed ?? '1', '--seed', 0, 2 ** 32 - 1);
  const threads = parseCount(args.threads ?? '2', '--threads', 1, 256);
  const csv = resolve(args.csv ?? DEFAULT_CSV);
  const generated = args.data === undefined ? mkdtempSync(join(tmpdir(), 'hpctrain-bench-learn-')) : undefined;
  try {
    let data: string;
    let classes: number;
    let trainImages: number;
    if (generated) {
      classes = parseCount(args.classes ?? '10', '--classes', 2, 10);
      const trainPerClass = parseCount(args['train-per-class'] ?? '150', '--train-per-class', 1, 100_000);
      const dataset = await writeShapesDataset({
        root: generated, classes, trainPerClass, validationPerClass: parseCount(args['validation-per-class'] ?? '30', '--validation-per-class', 1, 100_000),
        imageSize: 128, seed,
      });
      data = generated;
      trainImages = dataset.train;
      console.log(`learn data=shapes classes=${classes} train=${dataset.train} validation=${dataset.validation} dir=${generated}`);
    } else {
      data = resolve(String(args.data));
      const listing = await countImages(data);
      classes = listing.classes;
      trainImages = listing.train;
    }
    const globalBatch = batchSize * ranks;
    const stepsPerEpoch = Math.floor(Math.floor(trainImages / ranks) / batchSize);
    if (stepsPerEpoch === 0) throw new BenchError(`${trainImages} training images make no batch of ${batchSize} on each of ${ranks} ranks`);
    const steps = args.steps !== undefined ? parseCount(String(args.steps), '--steps', 1, 1_000_000) : Math.max(1, Math.round(Number(args.epochs ?? 4) * stepsPerEpoch));
    const settings: Settings = { data, classes, imageSize, batchSize, ranks, steps, seed, threads };
    const noPeer = args.peer === false ? '--no-peer' : await whyNoPythonPeer('torch, torchvision, PIL, numpy');
    if (noPeer) console.log(`learn impl=torch skipped: ${noPeer}`);
    const runs: Run[] = [];
    for (const recipe of recipes) {
      const { run, effective } = await runHpctrainRecipe(recipe, settings);
      runs.push(run);
      printRun(run);
      const peer = noPeer ? undefined : await runTorch(recipe, effective, settings, globalBatch);
      if (peer) {
        runs.push(peer);
        printRun(peer);
      }
      const chance = 1 / classes;
      const best = (r: Run) => Math.max(r.top1, r.top1Ema ?? 0);
      if (peer) console.log(`learn recipe=${recipe} target=top1-at-least-torch ours=${best(run).toFixed(4)} peer=${best(peer).toFixed(4)} met=${best(run) >= best(peer) ? 'yes' : 'no'}`);
      // The paper's recipe is not expected to learn in a short run: that it does not is the point of the default.
      if (recipe === 'default') console.log(`learn recipe=${recipe} target=above-chance ours=${best(run).toFixed(4)} chance=${chance.toFixed(4)} met=${best(run) >= 3 * chance ? 'yes' : 'no'}`);
    }
    const date = new Date().toISOString();
    writeCsv(csv, ['impl', 'recipe', 'classes', 'train_images', 'image_size', 'global_batch', 'steps', 'top1', 'top5', 'top1_ema', 'top5_ema', 'img_per_s', 'first_loss', 'last_loss', 'seconds', 'date'],
      runs.map((r) => ({
        impl: r.impl, recipe: r.recipe, classes, train_images: trainImages, image_size: imageSize, global_batch: globalBatch, steps: r.steps,
        top1: r.top1.toFixed(4), top5: r.top5.toFixed(4), top1_ema: r.top1Ema?.toFixed(4) ?? '', top5_ema: r.top5Ema?.toFixed(4) ?? '',
        img_per_s: r.imagesPerSecond.toFixed(3), first_loss: r.firstLoss.toFixed(4), last_loss: r.lastLoss.toFixed(4), seconds: r.seconds.toFixed(1), date,
      })));
    console.log(`learn csv=${csv}`);
    return 0;
  } finally {
    if (generated) rmSync(generated, { recursive: true, force: true });
  }
}

function printRun(run: Run): void {
  const ema = run.top1Ema !== undefined ? ` top1_ema=${run.top1Ema.toFixed(4)} top5_ema=${run.top5Ema!.toFixed(4)}` : '';
  console.log(`learn impl=${run.impl} recipe=${run.recipe} top1=${run.top1.toFixed(4)} top5=${run.top5.toFixed(4)}${ema} img_per_s=${run.imagesPerSecond.toFixed(2)} ` +
    `steps=${run.steps} loss=${run.firstLoss.toFixed(3)}->${run.lastLoss.toFixed(3)} seconds=${run.seconds.toFixed(0)}`);
}

/** summary.json of a run that evaluated. */
type EvaluatedSummary = HpctrainRun['summary'] & { eval?: { trained?: { top1: number; top5: number }; ema?: { top1: number; top5: number } } };

async function runHpctrainRecipe(recipe: string, s: Settings): Promise<{ run: Run; effective: Recipe }> {
  const train = ['--data', s.data, '--recipe', recipe, '--image-size', String(s.imageSize), '--batch-size', String(s.batchSize), '--steps', String(s.steps),
    '--seed', String(s.seed), '--eval-every', '0', '--checkpoint-minutes', '0', '--log-every', '10'];
  const { summary, output } = await runHpctrain(s.ranks, train, recipe);
  const evaluation = (summary as EvaluatedSummary).eval;
  const trained = evaluation?.trained;
  if (!trained) throw new BenchError(`hpctrain (${recipe}) evaluated nothing; its summary has no eval:\n${tail(output)}`);
  return {
    effective: summary.recipe,
    run: {
      impl: 'hpctrain', recipe, top1: trained.top1, top5: trained.top5, top1Ema: evaluation?.ema?.top1, top5Ema: evaluation?.ema?.top5,
      imagesPerSecond: summary.imagesPerSecond, steps: summary.steps, firstLoss: summary.firstLoss, lastLoss: summary.lastLoss, seconds: summary.seconds,
    },
  };
}

interface TorchResult {
  steps: number;
  seconds: number;
  img_per_s: number;
  first_loss: number;
  last_loss: number;
  top1: number;
  top5: number;
  top1_ema?: number;
  top5_ema?: number;
}

/** The PyTorch peer with hpctrain's effective recipe, value by value. */
async function runTorch(recipe: string, r: Recipe, s: Settings, globalBatch: number): Promise<Run> {
  const args = [PEER, '--data', s.data, '--image-size', String(s.imageSize), '--batch-size', String(globalBatch), '--seed', String(s.seed),
    '--threads', String(s.threads), ...torchRecipeArgs(r, s.steps), '--log-every', '10'];
  const t = await runTorchPeer(args, s.threads, recipe) as TorchResult;
  return {
    impl: 'torch', recipe, top1: t.top1, top5: t.top5, top1Ema: t.top1_ema, top5Ema: t.top5_ema, imagesPerSecond: t.img_per_s, steps: t.steps,
    firstLoss: t.first_loss, lastLoss: t.last_loss, seconds: t.seconds,
  };
}

/** Classes and training images of an ILSVRC2012-layout directory. */
async function countImages(dir: string): Promise<{ classes: number; train: number }> {
  const { detectLayout } = await import('../src/data/layout.js');
  const { openImagenetDir } = await import('../src/data/imagenet-dir.js');
  const layout = detectLayout(dir, 'train');
  if (layout.format !== 'imagenet-dir') throw new BenchError(`${dir}: the PyTorch peer reads ImageNet folders, not TFRecord shards`);
  const dataset = openImagenetDir(layout);
  return { classes: dataset.numClasses, train: dataset.examples.count };
}

runBench(main);
