// One worker process of the simulated rendezvous: hosts a contiguous block of member ranks, each a
// real DEALER socket over TCP calling the real rendezvous(), all sharing one ZeroMQ context.
// Started by bench/rendezvous-sim.ts with fork(); speaks the messages of rendezvous-sim-protocol.ts.
import * as zmq from 'zeromq';
import { rendezvous, type Rendezvous } from '../src/rendezvous/allgather.js';
import { epochMs } from './figures.js';
import { simHost, simMember, tableDigest, type FromWorker, type SimSetup, type ToWorker } from './rendezvous-sim-protocol.js';

let setup: SimSetup | undefined;
let context: zmq.Context | undefined;
let members: Rendezvous[] = [];

function tell(message: FromWorker): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function fail(error: unknown): Promise<never> {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  await tell({ type: 'failed', message: `worker for ranks ${setup?.firstRank}..${setup?.lastRank}: ${message}` }).catch(() => undefined);
  process.exit(1);
}

async function joinAll(s: SimSetup, ctx: zmq.Context): Promise<void> {
  const count = s.lastRank - s.firstRank + 1;
  const doneAt: number[] = [];
  const rankHosts = Array.from({ length: s.size }, (_, rank) => simHost(rank));
  // All members join at once, as the ranks of a job do; each records when it had its table.
  members = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const rank = s.firstRank + i;
    const joined = await rendezvous({
      jobId: s.jobId, rank, size: s.size, coordinator: '127.0.0.1', port: s.port, bindAddress: '127.0.0.1',
      secret: s.secret, timeoutMs: s.timeoutMs, self: simMember(rank, process.pid), rankHosts, context: ctx,
      log: (line) => process.stderr.write(`sim rank ${rank}: ${line}\n`),
    });
    doneAt.push(epochMs());
    return joined;
  }));
  // Digests are taken after the clock stopped: they are the bench's check, not the rendezvous's work.
  const digests: Record<string, number> = {};
  let wrongLength = 0;
  for (const member of members) {
    if (member.table.length !== s.size) wrongLength++;
    const digest = tableDigest(member.table);
    digests[digest] = (digests[digest] ?? 0) + 1;
  }
  await tell({ type: 'done', firstAt: Math.min(...doneAt), lastAt: Math.max(...doneAt), members: members.length, digests, wrongLength });
}

async function closeAll(): Promise<void> {
  await Promise.all(members.map((m) => m.close()));
  await tell({ type: 'closed' });
  process.exit(0);
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'setup') {
    setup = message.setup;
    const count = setup.lastRank - setup.firstRank + 1;
    // The default context allows 1023 sockets; this process holds one per member.
    context = new zmq.Context({ maxSockets: count + 64, ioThreads: setup.ioThreads });
    void tell({ type: 'ready' });
  } else if (message.type === 'go') {
    joinAll(setup!, context!).catch(fail);
  } else if (message.type === 'close') {
    closeAll().catch(fail);
  }
});
// The bench went away (it failed, or was interrupted): nothing left to report to.
process.on('disconnect', () => process.exit(1));
