// Rendezvous of real processes: one run of `hpctrain launch -n N -- rendezvous`, or of the mpi4py
// peer under mpirun, reduced to three figures. In both, every rank prints its own time from its
// process start until it had the gathered table, so the figures include interpreter start-up.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';
import { BenchError, mean, tail } from './figures.js';

export interface ProcessFigures {
  /** The slowest rank: when the whole job had the spec. */
  maxMs: number;
  meanMs: number;
  /** The whole launch command, as timed by the bench. */
  wallMs: number;
}

const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PEER_SCRIPT = fileURLToPath(new URL('../../bench/peers/mpi4py_allgather.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
/** After a timeout, how long a launcher gets to stop its ranks before SIGKILL. */
const KILL_GRACE_MS = 5000;

// The launcher prefixes each line with "[rank R] "; rank 0 also prints the spec as JSON, which this skips.
const OURS_LINE = /^\[rank (\d+)\] rendezvous rank=(\d+) size=(\d+) .*?\bspec_sha256=(\S+) .*?\belapsed_ms=([\d.]+)/gm;
// mpirun forwards the ranks' output in chunks, and two lines can end up glued together, so the
// peer's lines are matched anywhere, not from the start of a line.
const PEER_LINE = /peer rank=(\d+) size=(\d+) elapsed_ms=([\d.]+)/g;

export async function runLaunch(size: number, timeoutMs: number): Promise<ProcessFigures> {
  const what = `hpctrain launch -n ${size} -- rendezvous`;
  const { result, wallMs } = await timed(() => execa(process.execPath, [CLI_PATH, 'launch', '-n', String(size), '--', 'rendezvous'], {
    // A job id, port or secret inherited from the shell would make every run the same job.
    env: withoutJobVariables(process.env), extendEnv: false,
    stdin: 'ignore', reject: false, timeout: timeoutMs, forceKillAfterDelay: KILL_GRACE_MS,
  }));
  assertSucceeded(result, what);
  const ranks = [...String(result.stdout).matchAll(OURS_LINE)].map((m) => {
    if (m[1] !== m[2]) throw new BenchError(`${what}: the line of rank ${m[2]} carries the prefix of rank ${m[1]}:\n${m[0]}`);
    return { rank: Number(m[2]), size: Number(m[3]), digest: m[4]!, elapsedMs: Number(m[5]) };
  });
  assertEveryRank(ranks, size, what, result);
  const digests = new Set(ranks.map((r) => r.digest));
  if (digests.size !== 1) {
    throw new BenchError(`${what}: ranks disagree on the cluster spec (spec_sha256 = ${[...digests].join(', ')})\n${tail(String(result.stdout), 40)}`);
  }
  return figuresOf(ranks.map((r) => r.elapsedMs), wallMs);
}

export async function runMpi4pyPeer(size: number, timeoutMs: number): Promise<ProcessFigures> {
  const what = `mpirun -np ${size} ${PYTHON} ${PEER_SCRIPT}`;
  const { result, wallMs } = await timed(() => execa('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(size), PYTHON, PEER_SCRIPT], {
    stdin: 'ignore', reject: false, timeout: timeoutMs, forceKillAfterDelay: KILL_GRACE_MS,
  }));
  assertSucceeded(result, what);
  const ranks = [...String(result.stdout).matchAll(PEER_LINE)].map((m) => ({ rank: Number(m[1]), size: Number(m[2]), elapsedMs: Number(m[3]) }));
  assertEveryRank(ranks, size, what, result);
  return figuresOf(ranks.map((r) => r.elapsedMs), wallMs);
}

/** Why the mpi4py peer cannot run here, or undefined when it can. */
export async function whyNoMpi4pyPeer(): Promise<string | undefined> {
  const python = await execa(PYTHON, ['-c', 'import mpi4py'], { reject: false, timeout: 30_000, stdin: 'ignore' });
  if (python.failed) return `${PYTHON} -c 'import mpi4py' failed: ${lastLine(python.stderr) || python.shortMessage}`;
  const mpirun = await execa('mpirun', ['--version'], { reject: false, timeout: 30_000, stdin: 'ignore' });
  if (mpirun.failed) return `mpirun does not run: ${lastLine(mpirun.stderr) || mpirun.shortMessage}`;
  return undefined;
}

async function timed(run: () => Promise<Result>): Promise<{ result: Result; wallMs: number }> {
  const started = performance.now();
  const result = await run();
  return { result, wallMs: performance.now() - started };
}

function figuresOf(elapsedMs: number[], wallMs: number): ProcessFigures {
  return { maxMs: Math.max(...elapsedMs), meanMs: mean(elapsedMs), wallMs };
}

function assertSucceeded(result: Result, what: string): void {
  if (!result.failed) return;
  const how = result.timedOut ? 'timed out' : result.exitCode === undefined ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
  throw new BenchError(`${what} ${how}\n  stdout:\n${tail(String(result.stdout))}\n  stderr:\n${tail(String(result.stderr))}`);
}

/** Exactly one line from each rank 0..size-1, each naming the right size. */
function assertEveryRank(ranks: { rank: number; size: number }[], size: number, what: string, result: Result): void {
  const seen = new Set(ranks.map((r) => r.rank));
  const wrongSize = ranks.find((r) => r.size !== size);
  if (ranks.length === size && seen.size === size && [...seen].every((r) => r < size) && !wrongSize) return;
  const problem = wrongSize
    ? `rank ${wrongSize.rank} reports size ${wrongSize.size}`
    : `${ranks.length} rank lines (ranks ${[...seen].sort((a, b) => a - b).join(',') || 'none'}) instead of one from each of ${size} ranks`;
  throw new BenchError(`${what}: ${problem}\n  stdout:\n${tail(String(result.stdout), 40)}\n  stderr:\n${tail(String(result.stderr))}`);
}

function withoutJobVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => !e[0].startsWith('HPCTRAIN_') && e[1] !== undefined));
}

function lastLine(text: unknown): string {
  return String(text ?? '').trim().split('\n').pop() ?? '';
}
