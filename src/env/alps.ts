// Cray ALPS: aprun starts the processes of a PBS job on a Cray (XE/XK/XC) and sets ALPS_APP_PE,
// the rank, but neither the size nor the local rank. With `aprun -n N -N 1` the size is the number
// of nodes; with `-N K` aprun fills each node with K consecutive ranks, so the local rank is
// ALPS_APP_PE modulo K, which pbs.ts derives from that placement.
import { readInt } from './read-vars.js';
import type { Env } from './types.js';
import type { LauncherRank } from './mpi.js';

/** ALPS_APP_PE (rank), and, when the batch script exports it, HPCTRAIN_NPROCS (aprun -n). */
export function readAlpsRank(env: Env): LauncherRank | undefined {
  const rank = readInt(env, 'ALPS_APP_PE');
  if (rank === undefined) return undefined;
  return { launcher: 'aprun', rank, size: readInt(env, 'HPCTRAIN_NPROCS', 1), localRank: undefined, localSize: undefined };
}
