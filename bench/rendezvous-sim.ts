// The rendezvous alone, at sizes no test machine has nodes for: the coordinator (rank 0) runs in
// this process, the other size-1 members in a few worker processes, all over TCP on 127.0.0.1.
// The clock starts when every worker is ready and the coordinator is listening, and stops when
// the last member has its table; process start-up is left out, unlike the process benchmarks.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { probeTcp } from '../src/rendezvous/address.js';
import { rendezvous, type Rendezvous } from '../src/rendezvous/allgather.js';
import { BenchError, epochMs, findFreePorts } from './figures.js';
import { simHost, simMember, tableDigest, type FromWorker, type SimSetup, type ToWorker } from './rendezvous-sim-protocol.js';

export interface SimOptions {
  workers: number;
  ioThreads: number;
  timeoutMs: number;
  log: (line: string) => void;
}

export interface SimFigures {
  /** From go until the last member had its table. */
  ms: number;
  /** From go until the coordinator had sent every table. */
  coordinatorMs: number;
}

const WORKER_PATH = fileURLToPath(new URL('./rendezvous-sim-worker.js', import.meta.url));
/** Workers start in well under a second; this bounds a worker that hangs while loading. */
const READY_TIMEOUT_MS = 30_000;

type Done = Extract<FromWorker, { type: 'done' }>;

export async function runSimulated(size: number, options: SimOptions): Promise<SimFigures> {
  if (size < 2) throw new BenchError(`a simulated rendezvous needs at least 2 members, not ${size}`);
  const jobId = `bench-sim-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('hex');
  const port = await findFreePorts(`simulated rendezvous ${jobId}`, 1);
  const workers: ChildProcess[] = [];
  let coordinator: Rendezvous | undefined;
  try {
    const coordinating = rendezvous({
      jobId, rank: 0, size, coordinator: '127.0.0.1', port, bindAddress: '127.0.0.1', secret,
      timeoutMs: options.timeoutMs, self: simMember(0, process.pid),
      rankHosts: Array.from({ length: size }, (_, rank) => simHost(rank)),
      log: (line) => options.log(`sim coordinator: ${line}`),
    });
    let coordinatorDoneAt = 0;
    const coordinated = coordinating.then((c) => {
      coordinatorDoneAt = epochMs();
      coordinator = c;
    });
    coordinated.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    await Promise.race([waitListening(port, Date.now() + READY_TIMEOUT_MS), coordinated]);

    const blocks = splitRanks(size, options.workers);
    const readies = blocks.map(([firstRank, lastRank]) => {
      const worker = fork(WORKER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push(worker);
      const ready = waitFor(worker, 'ready', READY_TIMEOUT_MS);
      const setup: SimSetup = { jobId, secret, port, size, firstRank, lastRank, timeoutMs: options.timeoutMs, ioThreads: options.ioThreads };
      send(worker, { type: 'setup', setup });
      return ready;
    });
    await Promise.all(readies);

    const dones = workers.map((w) => waitFor(w, 'done', options.timeoutMs + 10_000));
    const goAt = epochMs();
    for (const worker of workers) send(worker, { type: 'go' });
    const [reports] = await Promise.all([Promise.all(dones), coordinated]);
    assertSameTables(reports, size, coordinator!);

    await Promise.all(workers.map((w) => {
      const closed = waitFor(w, 'closed', 10_000);
      send(w, { type: 'close' });
      return closed;
    }));
    return { ms: Math.max(...reports.map((r) => r.lastAt)) - goAt, coordinatorMs: coordinatorDoneAt - goAt };
  } finally {
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await coordinator?.close();
  }
}

/** Every member holds a table of `size` rows, and all of them equal the coordinator's. */
function assertSameTables(reports: Done[], size: number, coordinator: Rendezvous): void {
  const expected = tableDigest(coordinator.table);
  const members = reports.reduce((sum, r) => sum + r.members, 0);
  const wrongLength = reports.reduce((sum, r) => sum + r.wrongLength, 0);
  const others = reports.flatMap((r) => Object.entries(r.digests).filter(([digest]) => digest !== expected));
  if (coordinator.table.length !== size || members !== size - 1 || wrongLength > 0 || others.length > 0) {
    const differing = others.map(([digest, n]) => `${n} with ${digest}`).join(', ') || 'none';
    throw new BenchError(
      `simulated rendezvous of ${size}: coordinator table has ${coordinator.table.length} rows, ${members} of ${size - 1} members ` +
        `reported, ${wrongLength} with a table of the wrong length, tables differing from the coordinator's (${expected}): ${differing}`,
    );
  }
}

/** Contiguous blocks of ranks 1..size-1, as even as possible, one per worker. */
function splitRanks(size: number, workers: number): [number, number][] {
  const members = size - 1;
  const count = Math.min(workers, members);
  return Array.from({ length: count }, (_, w) => {
    const first = 1 + Math.floor((w * members) / count);
    const last = Math.floor(((w + 1) * members) / count);
    return [first, last];
  });
}

async function waitListening(port: number, deadline: number): Promise<void> {
  while (!(await probeTcp('127.0.0.1', port, 200))) {
    if (Date.now() > deadline) throw new BenchError(`the simulated coordinator did not listen on 127.0.0.1:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function send(worker: ChildProcess, message: ToWorker): void {
  worker.send(message);
}

/** The worker's next message of this type; a 'failed' message, an exit or the timeout rejects. */
function waitFor<K extends FromWorker['type']>(worker: ChildProcess, type: K, timeoutMs: number): Promise<Extract<FromWorker, { type: K }>> {
  return new Promise((resolve, reject) => {
    const finish = (error: Error | undefined, message?: FromWorker): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      if (error) reject(error);
      else resolve(message as Extract<FromWorker, { type: K }>);
    };
    const timer = setTimeout(() => finish(new BenchError(`simulated worker ${worker.pid} sent no "${type}" within ${timeoutMs / 1000} s`)), timeoutMs);
    const onMessage = (message: FromWorker): void => {
      if (message.type === type) finish(undefined, message);
      else if (message.type === 'failed') finish(new BenchError(`simulated ${message.message}`));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new BenchError(`simulated worker ${worker.pid} exited (${code ?? signal}) before sending "${type}"`));
    worker.on('message', onMessage);
    worker.on('exit', onExit);
  });
}
