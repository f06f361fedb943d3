// This machine only: ranks started by `hpctrain launch`, or a single process started by hand.
import { checkRank, readInt, requireInt } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv } from './types.js';

/**
 * Reads HPCTRAIN_RANK, HPCTRAIN_SIZE, HPCTRAIN_LOCAL_RANK and HPCTRAIN_JOB_ID, which
 * `hpctrain launch` sets for each rank it starts. Without them this is a job of one process.
 */
export const localProvider: EnvProvider = {
  name: 'local',
  detect: (env) => env.HPCTRAIN_RANK !== undefined,
  read(env: Env, io: EnvIo): JobEnv {
    const launched = env.HPCTRAIN_RANK !== undefined;
    const why = '`hpctrain launch` sets it for each rank it starts.';
    const rank = launched ? requireInt(env, 'HPCTRAIN_RANK', why) : 0;
    const size = launched ? requireInt(env, 'HPCTRAIN_SIZE', why, 1) : 1;
    checkRank(rank, size, 'HPCTRAIN_RANK', 'HPCTRAIN_SIZE');
    const host = io.hostname();
    return {
      scheduler: 'local',
      launcher: launched ? 'hpctrain-launch' : 'none',
      jobId: env.HPCTRAIN_JOB_ID || `local-${process.pid}`,
      rank,
      size,
      localRank: readInt(env, 'HPCTRAIN_LOCAL_RANK') ?? rank,
      // `hpctrain launch` starts every rank on this machine.
      localSize: size,
      nodeIndex: 0,
      hosts: [host],
      rankHosts: Array.from({ length: size }, () => host),
      coordinator: env.HPCTRAIN_COORDINATOR || '127.0.0.1',
    };
  },
};
