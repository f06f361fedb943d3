// The rendezvous benchmark: time from process start to cluster spec with real processes through
// hpctrain's local launcher, beside Open MPI + mpi4py doing the same allgather, and the
// rendezvous alone with thousands of simulated members. One line per figure, and a CSV.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import { BenchError, median, parseCount, parseList, rejectUnknown, writeCsv as writeCsvFile } from './figures.js';
import { runLaunch, runMpi4pyPeer, whyNoMpi4pyPeer, type ProcessFigures } from './rendezvous-processes.js';
import { runSimulated } from './rendezvous-sim.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/rendezvous.csv', import.meta.url));
/** The simulated rendezvous of this many members should take at most TARGET_SIM_MS. */
const TARGET_SIM_SIZE = 4096;
const TARGET_SIM_MS = 2000;
/** The launcher gives each rank a service port from a block of 64. */
const MAX_PROCESSES = 63;

const HELP = `Usage: npm run bench:rendezvous -- [options]
       node dist/bench/rendezvous.js [options]

Times the rendezvous three ways and prints one line per figure:
  processes    \`hpctrain launch -n N -- rendezvous\`; each rank reports ms from its own process
               start until it had the cluster spec. ms = slowest rank, mean_ms = mean over ranks,
               wall_ms = the whole launch command. Fails if a rank is missing or the ranks'
               spec_sha256 values differ.
  mpi4py-peer  the same figures for \`mpirun -np N python3 bench/peers/mpi4py_allgather.py\`
               (an allgather of host names, interpreter start-up included); skipped, with the
               reason, when /usr/bin/python3 cannot import mpi4py or mpirun is missing.
  simulated    one coordinator in this process and M-1 members (DEALER sockets over TCP on
               127.0.0.1, hosts nid00001..) in worker processes; ms from go, once all workers are
               ready and the coordinator listens, until the last member has its table.
Each figure is the median over the repeats. Closing lines compare: processes against half the
peer's ms, and simulated ${TARGET_SIM_SIZE} against ${TARGET_SIM_MS} ms.

Options:
  --n LIST            process counts, comma-separated, at most ${MAX_PROCESSES}, or "none"  [2,4,8,16,32]
  --sim LIST          simulated member counts, comma-separated, or "none"        [256,1024,4096]
  --repeats R         runs of each configuration                                  [3]
  --sim-workers W     worker processes holding the simulated members             [4]
  --sim-io-threads T  ZeroMQ I/O threads per worker process                      [1]
  --timeout SECONDS   limit for each run; a run over it is stopped and fails     [120]
  --no-peer           do not run the mpi4py peer
  --csv PATH          where to write the CSV (n, mode, ms, mean_ms, wall_ms, repeats, date)
                      [bench/results/rendezvous.csv]
  --verbose           also print each repeat and the simulated coordinator's time, to stderr
  -h, --help          this text
`;

interface Row {
  n: number;
  mode: 'processes' | 'mpi4py-peer' | 'simulated';
  ms: number;
  mean_ms?: number;
  wall_ms?: number;
}

interface BenchOptions {
  sizes: number[];
  simSizes: number[];
  repeats: number;
  simWorkers: number;
  simIoThreads: number;
  timeoutMs: number;
  peer: boolean;
  csv: string;
  verbose: boolean;
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  const args = minimist(argv, {
    string: ['n', 'sim', 'repeats', 'sim-workers', 'sim-io-threads', 'timeout', 'csv'],
    boolean: ['help', 'peer', 'verbose'],
    alias: { h: 'help' },
    default: { peer: true },
    unknown: rejectUnknown,
  });
  if (args.help) return undefined;
  const sizes = parseList(args.n ?? '2,4,8,16,32', '--n', 2, MAX_PROCESSES);
  return {
    sizes,
    simSizes: parseList(args.sim ?? '256,1024,4096', '--sim', 2, 1 << 16),
    repeats: parseCount(args.repeats ?? '3', '--repeats', 1, 1000),
    simWorkers: parseCount(args['sim-workers'] ?? '4', '--sim-workers', 1, 256),
    simIoThreads: parseCount(args['sim-io-threads'] ?? '1', '--sim-io-threads', 1, 64),
    timeoutMs: parseCount(args.timeout ?? '120', '--timeout', 1, 3600) * 1000,
    peer: args.peer as boolean,
    csv: resolve(args.csv ?? DEFAULT_CSV),
    verbose: args.verbose as boolean,
  };
}



async function main(options: BenchOptions): Promise<void> {
  const rows: Row[] = [];
  const comparisons: string[] = [];
  const say = (row: Row): void => {
    rows.push(row);
    const rest = row.mean_ms === undefined ? '' : ` mean_ms=${fixed(row.mean_ms)} wall_ms=${fixed(row.wall_ms!)}`;
    console.log(`rendezvous n=${row.n} mode=${row.mode} ms=${fixed(row.ms)}${rest}`);
  };
  const note = (line: string): void => {
    if (options.verbose) process.stderr.write(`${line}\n`);
  };

  const noPeer = !options.peer ? 'disabled with --no-peer' : options.sizes.length ? await whyNoMpi4pyPeer() : undefined;
  if (noPeer && options.sizes.length) console.log(`rendezvous mode=mpi4py-peer skipped: ${noPeer}`);
  for (const n of options.sizes) {
    const ours = await repeat(options.repeats, (i) => runLaunch(n, options.timeoutMs).then((f) => report(f, `processes n=${n} #${i}`, note)));
    say({ n, mode: 'processes', ...ours });
    if (noPeer) continue;
    const peer = await repeat(options.repeats, (i) => runMpi4pyPeer(n, options.timeoutMs).then((f) => report(f, `mpi4py-peer n=${n} #${i}`, note)));
    say({ n, mode: 'mpi4py-peer', ...peer });
    comparisons.push(compare(n, peer.ms / 2, ours.ms));
  }

  for (const m of options.simSizes) {
    const times: number[] = [];
    for (let i = 1; i <= options.repeats; i++) {
      const figures = await runSimulated(m, {
        workers: options.simWorkers, ioThreads: options.simIoThreads, timeoutMs: options.timeoutMs, log: (line) => process.stderr.write(`${line}\n`),
      });
      note(`simulated n=${m} #${i}: ms=${fixed(figures.ms)} (coordinator sent every table at ${fixed(figures.coordinatorMs)} ms)`);
      times.push(figures.ms);
    }
    say({ n: m, mode: 'simulated', ms: median(times) });
    if (m === TARGET_SIM_SIZE) comparisons.push(compare(m, TARGET_SIM_MS, median(times)));
  }

  for (const line of comparisons) console.log(line);
  writeCsv(options.csv, rows, options.repeats);
}

/** Run R times; each figure is the median of its own values. */
async function repeat(times: number, run: (i: number) => Promise<ProcessFigures>): Promise<{ ms: number; mean_ms: number; wall_ms: number }> {
  const all: ProcessFigures[] = [];
  for (let i = 1; i <= times; i++) all.push(await run(i));
  return {
    ms: median(all.map((f) => f.maxMs)),
    mean_ms: median(all.map((f) => f.meanMs)),
    wall_ms: median(all.map((f) => f.wallMs)),
  };
}

function report(figures: ProcessFigures, what: string, note: (line: string) => void): ProcessFigures {
  note(`${what}: ms=${fixed(figures.maxMs)} mean_ms=${fixed(figures.meanMs)} wall_ms=${fixed(figures.wallMs)}`);
  return figures;
}

function compare(n: number, targetMs: number, oursMs: number): string {
  return `rendezvous n=${n} target_ms=${fixed(targetMs)} ours_ms=${fixed(oursMs)} met=${oursMs <= targetMs ? 'yes' : 'no'}`;
}

function writeCsv(path: string, rows: Row[], repeats: number): void {
  const date = new Date().toISOString();
  const records = rows.map((r) => ({
    n: r.n, mode: r.mode, ms: fixed(r.ms),
    mean_ms: r.mean_ms === undefined ? '' : fixed(r.mean_ms), wall_ms: r.wall_ms === undefined ? '' : fixed(r.wall_ms),
    repeats, date,
  }));
  writeCsvFile(path, ['n', 'mode', 'ms', 'mean_ms', 'wall_ms', 'repeats', 'date'], records);
}

function fixed(ms: number): string {
  return ms.toFixed(1);
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(HELP);
  } else {
    await main(options);
    // Stop now rather than wait out ZeroMQ's linger on sockets the bench no longer needs.
    process.exit(0);
  }
} catch (error) {
  const usage = error instanceof BenchError;
  process.stderr.write(`rendezvous bench FAILED: ${usage ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
