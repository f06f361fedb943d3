// What the simulated-rendezvous bench and its worker processes say to each other over the fork
// IPC channel, and the pieces both sides must compute the same way (host names, table digest).
import { createHash } from 'node:crypto';
import type { MemberInfo } from '../src/rendezvous/protocol.js';

export interface SimSetup {
  jobId: string;
  /** Sent over IPC rather than argv, so it stays out of `ps`, as HPCTRAIN_SECRET does for real jobs. */
  secret: string;
  port: number;
  size: number;
  /** This worker's members are ranks firstRank..lastRank, inclusive. */
  firstRank: number;
  lastRank: number;
  timeoutMs: number;
  ioThreads: number;
}

export type ToWorker = { type: 'setup'; setup: SimSetup } | { type: 'go' } | { type: 'close' };

export type FromWorker =
  | { type: 'ready' }
  | {
      type: 'done';
      /** epochMs() when this worker's first and last member had its table. */
      firstAt: number;
      lastAt: number;
      members: number;
      /** How many members hold a table of each digest, and how many had a table of the wrong length. */
      digests: Record<string, number>;
      wrongLength: number;
    }
  | { type: 'closed' }
  | { type: 'failed'; message: string };

/** Cray compute-node names, as the scheduler reports them: rank r runs on nid{r+1}, five digits. */
export function simHost(rank: number): string {
  return `nid${String(rank + 1).padStart(5, '0')}`;
}

export function simMember(rank: number, pid: number): MemberInfo {
  const host = simHost(rank);
  // Real jobs advertise the scheduler's node name; here every name is a label and all connect to 127.0.0.1.
  return { rank, host, address: host, localRank: 0, pid };
}

/** A digest of a gathered table, to check that every member got the same one. */
export function tableDigest(table: readonly MemberInfo[]): string {
  const rows = table.map((m) => `${m.rank} ${m.host} ${m.address} ${m.localRank} ${m.pid}`).join('\n');
  return createHash('sha256').update(rows).digest('hex').slice(0, 16);
}
