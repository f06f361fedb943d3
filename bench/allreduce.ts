// The allreduce benchmark: hpctrain's ring allreduce (mean, float32) between N processes on this
// machine, beside torch.distributed's gloo all_reduce doing the same, over buffer sizes from 1 MB
// to 256 MB and the 95 MB of Inception-V3's gradients. One line per figure, and a CSV.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';
import minimist from 'minimist';
import { BenchError, findFreePorts, median, PEER_PYTHON, whyNoPythonPeer, parseCount, parseList, rejectUnknown, runBench, tail, writeCsv } from './figures.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/allreduce.csv', import.meta.url));
const WORKER = fileURLToPath(new URL('./allreduce-worker.js', import.meta.url));
const PS_WORKER = fileURLToPath(new URL('./ps-exchange-worker.js', import.meta.url));
const PEER_SCRIPT = fileURLToPath(new URL('../../bench/peers/torch_allreduce.py', import.meta.url));
const PYTHON = PEER_PYTHON;
/** Inception-V3's trainable weights (23,833,568 floats with its 1000-class head) as bytes. */
const INCEPTION_GRADIENT_BYTES = 95_334_272;
const DEFAULT_SIZES = [2 ** 20, 4 * 2 ** 20, 16 * 2 ** 20, 64 * 2 ** 20, INCEPTION_GRADIENT_BYTES, 256 * 2 ** 20];

const HELP = `Usage: npm run bench:allreduce -- [options]
       node dist/bench/allreduce.js [options]

Times the allreduce (mean of float32 buffers) of hpctrain's gradient exchange between N processes
on this machine (127.0.0.1; with --srun, one per node of a Slurm allocation), and
torch.distributed's gloo all_reduce side by side, and prints one line per figure:
  allreduce n=N bytes=B impl=I ms=T busbw_GBps=G
ms is the median of the timed repeats, each after a one-value allreduce that lines the ranks up;
bus bandwidth is B * 2(N-1)/N / ms, what each rank sends (NCCL's definition). impl is
hpctrain-ring (authenticated with Poly1305, 4 MiB pieces), hpctrain-ps (the parameter-server
strategy's whole step exchange with N workers and 1 server: push, the server's mean and RMSProp
update, pull; the same bus-bandwidth formula, for comparison) or torch-gloo (PyTorch 1.13 from
Debian's python3-torch, ${PYTHON}; skipped with the reason when it cannot import torch).
Closing lines compare the two at each N and size.

Options:
  --ranks LIST     process counts, comma-separated                            [2,4]
  --sizes LIST     buffer sizes in bytes, multiples of 4, comma-separated     [1 MB .. 256 MB and ${INCEPTION_GRADIENT_BYTES}]
  --warmup N       untimed allreduces per size                               [1]
  --repeats N      timed allreduces per size                                 [5]
  --no-peer        do not run torch.distributed
  --no-ps          do not run the parameter-server exchange
  --srun           inside a Slurm allocation (salloc, or a batch job): run each N's ranks with
                   srun, one per node, so that the figures are the cluster network's (the
                   parameter servers' N workers and server take N+1 nodes; more are skipped)
  --csv PATH       where to write the CSV (n, bytes, impl, ms, busbw_GBps, repeats, date)
                   [bench/results/allreduce.csv]
  -h, --help       this text
`;

interface Row {
  n: number;
  bytes: number;
  impl: string;
  ms: number;
  busbw: number;
  repeats: number;
}

async function main(argv: string[]): Promise<number> {
  const args = minimist(argv, { string: ['ranks', 'sizes', 'warmup', 'repeats', 'csv'], boolean: ['help', 'peer', 'ps', 'srun'], alias: { h: 'help' }, default: { peer: true, ps: true }, unknown: rejectUnknown });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const ranks = parseList(args.ranks ?? '2,4', '--ranks', 2, 64);
  const sizes = args.sizes ? parseList(args.sizes, '--sizes', 4, 2 ** 31) : DEFAULT_SIZES;
  for (const bytes of sizes) if (bytes % 4 !== 0) throw new BenchError(`--sizes: ${bytes} is not a multiple of 4 bytes (float32)`);
  const warmup = parseCount(args.warmup ?? '1', '--warmup', 0, 100);
  const repeats = parseCount(args.repeats ?? '5', '--repeats', 1, 1000);
  const csv = resolve(args.csv ?? DEFAULT_CSV);
  const timing: Timing = { sizes, warmup, repeats, nodes: args.srun ? allocatedNodes(Math.max(...ranks)) : undefined };
  const peerSkip = args.peer ? await whyNoPythonPeer('torch.distributed') : 'disabled with --no-peer';
  if (peerSkip) console.log(`allreduce impl=torch-gloo skipped: ${peerSkip}`);
  const rows: Row[] = [];
  for (const n of ranks) {
    rows.push(...await runOurs(n, timing));
    if (args.ps && timing.nodes !== undefined && n + 1 > timing.nodes) console.log(`allreduce n=${n} impl=hpctrain-ps skipped: ${n} workers and a server need ${n + 1} nodes, and the allocation has ${timing.nodes}`);
    else if (args.ps) rows.push(...await runPs(n, timing));
    if (!peerSkip) rows.push(...await runPeer(n, timing));
  }
  for (const n of ranks) {
    for (const bytes of sizes) {
      const ours = rows.find((r) => r.n === n && r.bytes === bytes && r.impl === 'hpctrain-ring');
      const peer = rows.find((r) => r.n === n && r.bytes === bytes && r.impl === 'torch-gloo');
      if (ours && peer) console.log(`allreduce n=${n} bytes=${bytes} target=faster-than-gloo ours_ms=${ours.ms.toFixed(1)} peer_ms=${peer.ms.toFixed(1)} met=${ours.ms < peer.ms ? 'yes' : 'no'}`);
    }
  }
  const date = new Date().toISOString();
  writeCsv(csv, ['n', 'bytes', 'impl', 'ms', 'busbw_GBps', 'repeats', 'date'], rows.map((r) => ({ n: r.n, bytes: r.bytes, impl: r.impl, ms: r.ms.toFixed(2), busbw_GBps: r.busbw.toFixed(3), repeats: r.repeats, date })));
  console.log(`allreduce csv=${csv}`);
  return 0;
}

function report(n: number, impl: string, output: string, repeats: number): Row[] {
  return output.trim().split('\n').filter((line) => line.startsWith('{')).map((line) => {
    const { bytes, ms } = JSON.parse(line) as { bytes: number; ms: number[] };
    const time = median(ms);
    const row = { n, bytes, impl, ms: time, busbw: (bytes * 2 * (n - 1)) / n / (time / 1000) / 1e9, repeats };
    console.log(`allreduce n=${n} bytes=${bytes} impl=${impl} ms=${time.toFixed(1)} busbw_GBps=${row.busbw.toFixed(2)}`);
    return row;
  });
}

/** What every run times: the sizes, the untimed and timed repeats, and (--srun) the allocation's nodes. */
interface Timing {
  sizes: number[];
  warmup: number;
  repeats: number;
  nodes: number | undefined;
}

const timingArgs = (t: Timing): string[] => [t.sizes.join(','), String(t.warmup), String(t.repeats)];

async function runOurs(n: number, timing: Timing): Promise<Row[]> {
  const base = await findFreePorts(`allreduce ${process.pid} n=${n}`, n);
  const results = await startRanks(timing, n, (rank) => ({ argv: ['node', WORKER, rank, String(n), String(base), ...timingArgs(timing)] }));
  checkExits('hpctrain-ring', n, results);
  return report(n, 'hpctrain-ring', String(results[0]!.stdout), timing.repeats);
}

/** n workers and one parameter server: the whole step exchange (push, the server's mean and RMSProp update, pull). */
async function runPs(n: number, timing: Timing): Promise<Row[]> {
  const base = await findFreePorts(`ps ${process.pid} n=${n}`, n + 1);
  const results = await startRanks(timing, n + 1, (rank) => ({ argv: ['node', PS_WORKER, rank, String(n + 1), '1', String(base), ...timingArgs(timing)] }));
  checkExits('hpctrain-ps', n, results);
  // The first worker reports (on its own, or in srun's one output).
  return report(n, 'hpctrain-ps', String(results[Math.min(1, results.length - 1)]!.stdout), timing.repeats);
}

async function runPeer(n: number, timing: Timing): Promise<Row[]> {
  const port = await findFreePorts(`gloo ${process.pid} n=${n}`, 1);
  const peerArgs = [PEER_SCRIPT, '--sizes', timing.sizes.join(','), '--warmup', String(timing.warmup), '--repeats', String(timing.repeats)];
  const results = await startRanks(timing, n, (rank) => (rank === 'srun'
    // torch.distributed's env:// rendezvous from srun's variables, on the step's first node.
    ? { argv: ['bash', '-c', `RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS MASTER_ADDR=$(scontrol show hostnames "$SLURM_STEP_NODELIST" | head -n 1) MASTER_PORT=${port} OMP_NUM_THREADS=1 exec "$0" "$@"`, PYTHON, ...peerArgs] }
    : { argv: [PYTHON, ...peerArgs], env: { RANK: rank, WORLD_SIZE: String(n), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1' } }));
  checkExits('torch-gloo', n, results);
  return report(n, 'torch-gloo', String(results[0]!.stdout), timing.repeats);
}

/** The allocation's nodes under --srun (each N's ranks take N of them), or an error that says how to get one. */
function allocatedNodes(needed: number): number {
  const count = Number(process.env.SLURM_JOB_NUM_NODES ?? process.env.SLURM_NNODES);
  if (!process.env.SLURM_JOB_ID || !Number.isInteger(count)) {
    throw new BenchError(`--srun runs inside a Slurm allocation: salloc --nodes=${needed} node dist/bench/allreduce.js --srun ..., or sbatch --nodes=${needed} --wrap "node dist/bench/allreduce.js --srun ..."`);
  }
  if (needed > count) throw new BenchError(`--ranks asks for ${needed} ranks, one per node, and the allocation has ${count} node(s)`);
  return count;
}

/**
 * `size` ranks, each `command(rank)`: processes here (rank "0", "1", ...), or under --srun one srun
 * step with a rank per node (rank "srun": each process finds its own).
 */
async function startRanks(timing: Timing, size: number, command: (rank: string) => { argv: string[]; env?: Record<string, string> }): Promise<Result[]> {
  if (timing.nodes !== undefined) {
    const { argv } = command('srun');
    return [await execa('srun', [`--nodes=${size}`, `--ntasks=${size}`, '--ntasks-per-node=1', '--kill-on-bad-exit=1', ...argv], { reject: false, timeout: 1_800_000 })];
  }
  return Promise.all(Array.from({ length: size }, (_, rank) => {
    const { argv: [file, ...args], env } = command(String(rank));
    return execa(file!, args, { reject: false, timeout: 1_800_000, env });
  }));
}

function checkExits(impl: string, n: number, results: Result[]): void {
  const failed = results.findIndex((r) => r.exitCode !== 0);
  if (failed >= 0) throw new BenchError(`${impl} with ${n} ranks: rank ${failed} exited ${results[failed]!.exitCode ?? results[failed]!.signal}:\n${tail(String(results[failed]!.stderr))}`);
}

runBench(main);
