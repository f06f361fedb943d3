// Where bench/allreduce's ranks are: all on 127.0.0.1 (RANK given), or one per node of a Slurm
// job step (RANK "srun": SLURM_PROCID, and the step's nodes in SLURM_STEP_NODELIST), so that the
// figures are those of the cluster's own network.
import { expandHostlist } from '../src/env/hostlist.js';

export interface BenchPeers {
  rank: number;
  peers: Array<{ rank: number; host: string; address: string; port: number }>;
}

export function benchPeers(rankArg: string, size: number, basePort: number, env: NodeJS.ProcessEnv = process.env): BenchPeers {
  if (rankArg !== 'srun') {
    return { rank: Number(rankArg), peers: Array.from({ length: size }, (_, r) => ({ rank: r, host: '127.0.0.1', address: '127.0.0.1', port: basePort + r })) };
  }
  const hosts = expandHostlist(env.SLURM_STEP_NODELIST ?? '');
  const rank = Number(env.SLURM_PROCID);
  if (hosts.length !== size || !Number.isInteger(rank)) {
    throw new Error(`srun mode: SLURM_STEP_NODELIST="${env.SLURM_STEP_NODELIST ?? ''}" and SLURM_PROCID="${env.SLURM_PROCID ?? ''}" do not give ${size} nodes, one rank each`);
  }
  // srun's block distribution: rank r on the step's r-th node.
  return { rank, peers: hosts.map((host, r) => ({ rank: r, host, address: host, port: basePort + r })) };
}
