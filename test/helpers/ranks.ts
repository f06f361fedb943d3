// Many ranks of a real rendezvous in one test process, each with its own real ZeroMQ socket.
import { rendezvous, type Rendezvous, type RendezvousConfig } from '../../src/rendezvous/allgather.js';

export interface RankSetup {
  jobId: string;
  size: number;
  port: number;
  secret: string | undefined;
  timeoutMs?: number;
}

export function configFor(setup: RankSetup, rank: number, logs: string[] = []): RendezvousConfig {
  const host = `node${String(rank + 1).padStart(2, '0')}`;
  return {
    jobId: setup.jobId,
    rank,
    size: setup.size,
    coordinator: '127.0.0.1',
    port: setup.port,
    bindAddress: '127.0.0.1',
    secret: setup.secret,
    timeoutMs: setup.timeoutMs ?? 10_000,
    self: { rank, host, address: `10.0.0.${rank + 1}`, localRank: 0, pid: 1000 + rank },
    rankHosts: Array.from({ length: setup.size }, (_, r) => `node${String(r + 1).padStart(2, '0')}`),
    log: (line) => logs.push(line),
  };
}

/** Start the given ranks concurrently; settle each as a result or an error. */
export async function runRanks(setup: RankSetup, ranks: number[], logs: string[][] = []): Promise<PromiseSettledResult<Rendezvous>[]> {
  return Promise.allSettled(ranks.map((rank) => rendezvous(configFor(setup, rank, (logs[rank] ??= [])))));
}

export async function closeAll(results: PromiseSettledResult<Rendezvous>[]): Promise<void> {
  await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
}

export function fulfilled(results: PromiseSettledResult<Rendezvous>[]): Rendezvous[] {
  return results.map((r, i) => {
    if (r.status === 'rejected') throw new Error(`rank ${i} failed: ${(r.reason as Error).message}`);
    return r.value;
  });
}
