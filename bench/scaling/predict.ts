// The scaling study's prediction: images/s and efficiency at node counts beyond the measured ones
// (16, 64, 128, 512 by default), from the one-node run's step and the alpha-beta model of the
// exchange fitted on bench/allreduce's timings (bench/scaling/model.ts), and the model's error on
// the node counts that were measured. A prediction, not a measurement: every line says so.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { BenchError, parseList, runBenchIfMain, writeCsv } from '../figures.js';
import { fitRing, fitServers, predictStep, type ExchangeTiming, type LinearFit, type NodeStep } from './model.js';
import { parseStudyArgs } from './study-args.js';
import { readStudyCsv } from './table.js';

const DEFAULT_ALLREDUCE = fileURLToPath(new URL('../../../bench/results/allreduce.csv', import.meta.url));

const HELP = `Usage: node dist/bench/scaling/predict.js --out DIR [options]

Predicts images/s and scaling efficiency at node counts the study did not measure, for each
strategy it measured, from
  - the one-node allreduce run of the study (collect's CSV): a node's compute and data time per
    step, and its optimizer update (what "comm" is on one node);
  - an alpha-beta model of the exchange fitted on bench/allreduce's CSV (its hpctrain-ring and
    hpctrain-ps rows): ring allreduce 2(N-1) alpha + 2(N-1)/N x bytes x beta, parameter servers
    a + workers x bytes/K x b;
and prints one line per figure:
  predict fit impl=ring|ps alpha_ms=A beta_GBps=G points=P rms_error=E
  predict check nodes=N strategy=S measured_img_per_s=M predicted_img_per_s=P error=E comm_error=C
  predict nodes=N strategy=S workers=W step_ms=T comm_ms=C img_per_s=X efficiency=F (prediction)
Where the CSV has torch.distributed's gloo figures too (PyTorch beside hpctrain in the same run),
the allreduce is also predicted with gloo's exchange in hpctrain's step (exchange=torch-gloo).
The check lines are the model against what the study measured. Its assumptions: each node has
its own cores or GPU (so compute per step stays what one node measured), the network the
allreduce CSV was measured on is the one the jobs use, and nothing overlaps compute with
communication (hpctrain's step does not).

Options:
  --out DIR            the study's folder                                [bench/results/scaling]
  --csv PATH           collect's CSV                                     [DIR/scaling.csv]
  --allreduce-csv P    bench/allreduce's CSV, measured on the cluster    [DIR/allreduce.csv (sweep
                       --exchange), else bench/results/allreduce.csv]
  --at LIST            node counts to predict                            [16,64,128,512]
  --write PATH         the predictions as CSV                            [DIR/predict.csv]
  -h, --help           this text
`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseStudyArgs(argv, HELP, ['allreduce-csv', 'at', 'write']);
  if (!parsed) return 0;
  const { args, out, csv } = parsed;
  const rows = readStudyCsv(csv).filter((r) => r.kind === 'study' && r.state === 'ok');
  // The study's own measurement (sweep --exchange) first, then the repository's.
  const allreduceCsv = resolve(args['allreduce-csv'] ?? (existsSync(join(out, 'allreduce.csv')) ? join(out, 'allreduce.csv') : DEFAULT_ALLREDUCE));
  const at = parseList(args.at ?? '16,64,128,512', '--at', 1, 1_000_000);
  const one = rows.find((r) => r.nodes === 1 && r.strategy === 'allreduce');
  if (!one) throw new BenchError('the study has no finished one-node allreduce run, which the model takes a node\'s step from; sweep with --nodes 1,... --strategies allreduce,...');
  const ranksPerNode = one.ranks / one.nodes;
  if (one.gradientBytes === undefined) throw new BenchError('the CSV has no gradient_bytes (collected from an older summary.json); run the sweep again');
  const timings = readAllreduceCsv(allreduceCsv);
  const ring = fitRing(timings.ring);
  const ps = timings.ps.length >= 2 ? fitServers(timings.ps) : undefined;
  // The peer's allreduce in the same model: what hpctrain's step would do with gloo's exchange.
  const gloo = timings.gloo.length >= 2 ? fitRing(timings.gloo) : undefined;
  printFit('ring', ring);
  if (ps) printFit('ps', ps);
  if (gloo) printFit('torch-gloo', gloo);
  const node: NodeStep = { batchSize: one.batchSize, computeMs: one.stepMsMedian! * (one.computeShare! + one.dataShare!), updateMs: one.stepMsMedian! * one.commShare! };
  // Each strategy's parameter servers, as its rows have them.
  const serversOf = new Map(rows.map((r) => [r.strategy, r.servers]));
  const strategies = [...serversOf.keys()];
  const predictFor = (strategy: string, nodes: number, ringFit = ring) => predictStep({
    nodes, ranksPerNode, servers: serversOf.get(strategy)!, scaling: one.scaling, batchSize: one.batchSize, globalBatch: one.globalBatch, gradientBytes: one.gradientBytes!,
    node, ring: ringFit, ps,
  });
  // The one-node run is the model's input, so the check starts at two nodes.
  for (const row of rows.filter((r) => r.nodes > 1)) {
    if (row.strategy !== 'allreduce' && !ps) continue;
    const predicted = predictFor(row.strategy, row.nodes);
    const measuredComm = row.stepMsMedian! * row.commShare!;
    console.log(`predict check nodes=${row.nodes} strategy=${row.strategy} measured_img_per_s=${row.imagesPerSecond!.toFixed(2)} predicted_img_per_s=${predicted.imagesPerSecond.toFixed(2)} ` +
      `error=${percent(predicted.imagesPerSecond / row.imagesPerSecond! - 1)} measured_comm_ms=${measuredComm.toFixed(0)} predicted_comm_ms=${predicted.commMs.toFixed(0)} comm_error=${percent(predicted.commMs / measuredComm - 1)}`);
  }
  const records: Record<string, unknown>[] = [];
  for (const strategy of strategies) {
    if (strategy !== 'allreduce' && !ps) {
      console.log(`predict strategy=${strategy} skipped: ${allreduceCsv} has no hpctrain-ps rows to fit the servers' fan-in on`);
      continue;
    }
    const exchanges = strategy === 'allreduce' && gloo ? [['hpctrain', ring], ['torch-gloo', gloo]] as const : [['hpctrain', ring]] as const;
    for (const [exchange, fit] of exchanges) {
      for (const nodes of at) {
        const p = predictFor(strategy, nodes, fit);
        if (p.workers < 1) continue;
        const efficiency = p.imagesPerSecond / (nodes * one.imagesPerSecond!);
        console.log(`predict nodes=${nodes} strategy=${strategy}${exchange === 'hpctrain' ? '' : ` exchange=${exchange}`} workers=${p.workers} step_ms=${p.stepMs.toFixed(0)} ` +
          `comm_ms=${p.commMs.toFixed(0)} img_per_s=${p.imagesPerSecond.toFixed(1)} efficiency=${efficiency.toFixed(3)} (prediction)`);
        records.push({ kind: 'prediction', nodes, strategy, exchange, workers: p.workers, batch_per_worker: p.batchSize, step_ms: p.stepMs.toFixed(1), comm_ms: p.commMs.toFixed(1),
          img_per_s: p.imagesPerSecond.toFixed(2), efficiency: efficiency.toFixed(4) });
      }
    }
  }
  const write = resolve(args.write ?? join(out, 'predict.csv'));
  writeCsv(write, ['kind', 'nodes', 'strategy', 'exchange', 'workers', 'batch_per_worker', 'step_ms', 'comm_ms', 'img_per_s', 'efficiency'], records);
  console.log(`predict csv=${write} allreduce_csv=${allreduceCsv} gradient_bytes=${one.gradientBytes} one_node_step_ms=${one.stepMsMedian!.toFixed(0)}`);
  return 0;
}

const percent = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

function printFit(impl: string, fit: LinearFit): void {
  console.log(`predict fit impl=${impl} alpha_ms=${fit.alphaMs.toFixed(3)} beta_GBps=${fit.betaMsPerByte > 0 ? (1 / fit.betaMsPerByte / 1e6).toFixed(3) : 'inf'} points=${fit.points} rms_error=${(fit.rmsRelativeError * 100).toFixed(1)}%`);
}

/** bench/allreduce's rows: hpctrain-ring and torch-gloo by rank count, hpctrain-ps by worker count (one server). */
export function readAllreduceCsv(path: string): { ring: ExchangeTiming[]; ps: ExchangeTiming[]; gloo: ExchangeTiming[] } {
  if (!existsSync(path)) throw new BenchError(`${path} does not exist: measure the exchange first, on the cluster's nodes: npm run bench:allreduce -- --csv ${path} (add --no-peer without PyTorch)`);
  const records = parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  if (records.length === 0 || !['n', 'bytes', 'impl', 'ms'].every((c) => c in records[0]!)) throw new BenchError(`${path} is not bench/allreduce's CSV (n, bytes, impl, ms)`);
  const of = (impl: string) => records.filter((r) => r.impl === impl).map((r) => ({ n: Number(r.n), bytes: Number(r.bytes), ms: Number(r.ms) }));
  return { ring: of('hpctrain-ring'), ps: of('hpctrain-ps'), gloo: of('torch-gloo') };
}

runBenchIfMain(import.meta.url, main);
