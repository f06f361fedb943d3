// The scaling study: `hpctrain train` on 1, 2 and 3 ranks of this machine through the local
// launcher (synthetic data), with each strategy, reading each run's summary.json: throughput
// after the first step, the share of time in the exchange, and the scaling efficiency (the
// throughput over the workers' count times one worker's). One line per figure, and a CSV.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import { BenchError, parseCount, parseList, rejectUnknown, runBench, runHpctrain, writeCsv } from './figures.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/train.csv', import.meta.url));

const HELP = `Usage: npm run bench:train -- [options]
       node dist/bench/train.js [options]

Runs hpctrain train through the local launcher on 1, 2 and 3 ranks of this machine (synthetic
data, Inception-V3) with each strategy (ps: the first rank serves, the others work), and prints
one line per run:
  train ranks=N strategy=S workers=W img_per_s=X comm_share=C efficiency=E
img_per_s is the whole job's, over the steps after the first (summary.json); efficiency is
img_per_s / (W x the 1-worker allreduce run's img_per_s).

Options:
  --ranks LIST        rank counts, comma-separated                  [1,2,3]
  --strategies LIST   allreduce,ps                                  [allreduce,ps]
  --image-size S      [75]
  --batch-size B      per worker                                    [4]
  --steps N           steps per run (the first is left out)         [6]
  --csv PATH          [bench/results/train.csv]
  -h, --help
`;

interface Row {
  ranks: number;
  strategy: string;
  workers: number;
  imagesPerSecond: number;
  commShare: number;
  efficiency: number;
}

async function main(argv: string[]): Promise<number> {
  const args = minimist(argv, { string: ['ranks', 'strategies', 'image-size', 'batch-size', 'steps', 'csv'], boolean: ['help'], alias: { h: 'help' }, unknown: rejectUnknown });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const ranks = parseList(args.ranks ?? '1,2,3', '--ranks', 1, 64);
  const strategies = String(args.strategies ?? 'allreduce,ps').split(',');
  for (const s of strategies) if (s !== 'allreduce' && s !== 'ps') throw new BenchError(`--strategies: "${s}" is neither allreduce nor ps`);
  const imageSize = parseCount(args['image-size'] ?? '75', '--image-size', 75, 299);
  const batchSize = parseCount(args['batch-size'] ?? '4', '--batch-size', 1, 64);
  const steps = parseCount(args.steps ?? '6', '--steps', 2, 10_000);
  const csv = resolve(args.csv ?? DEFAULT_CSV);
  const rows: Row[] = [];
  let single: number | undefined;
  for (const strategy of strategies) {
    for (const n of ranks) {
      const workers = strategy === 'ps' ? n - 1 : n;
      if (workers < 1) continue;
      const summary = await runTraining(n, strategy, imageSize, batchSize, steps);
      if (strategy === 'allreduce' && n === 1) single = summary.imagesPerSecond;
      const efficiency = single ? summary.imagesPerSecond / (workers * single) : Number.NaN;
      const row = { ranks: n, strategy, workers, imagesPerSecond: summary.imagesPerSecond, commShare: summary.commShare, efficiency };
      rows.push(row);
      console.log(`train ranks=${n} strategy=${strategy} workers=${workers} img_per_s=${row.imagesPerSecond.toFixed(2)} comm_share=${row.commShare.toFixed(3)} efficiency=${Number.isNaN(efficiency) ? 'n/a' : efficiency.toFixed(2)}`);
    }
  }
  const date = new Date().toISOString();
  writeCsv(csv, ['ranks', 'strategy', 'workers', 'image_size', 'batch_size', 'steps', 'img_per_s', 'comm_share', 'efficiency', 'date'], rows.map((r) => ({
    ranks: r.ranks, strategy: r.strategy, workers: r.workers, image_size: imageSize, batch_size: batchSize, steps,
    img_per_s: r.imagesPerSecond.toFixed(3), comm_share: r.commShare.toFixed(4), efficiency: Number.isNaN(r.efficiency) ? '' : r.efficiency.toFixed(3), date,
  })));
  console.log(`train csv=${csv}`);
  return 0;
}

async function runTraining(n: number, strategy: string, imageSize: number, batchSize: number, steps: number): Promise<{ imagesPerSecond: number; commShare: number }> {
  const train = ['--data', 'synthetic', '--image-size', String(imageSize), '--batch-size', String(batchSize), '--steps', String(steps),
    '--warmup-epochs', '0', '--eval-batches', '0', '--ema-decay', '0', '--checkpoint-minutes', '0',
    ...(strategy === 'ps' ? ['--strategy', 'ps', '--num-ps', '1'] : [])];
  return (await runHpctrain(n, train, `${strategy} on ${n} rank(s)`)).summary;
}

runBench(main);
