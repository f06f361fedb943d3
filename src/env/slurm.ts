// Slurm: one task per node started by srun (or by mpirun inside an allocation).
import { EnvironmentError } from '../errors.js';
import { expandHostlist, expandTasksPerNode, HostlistError } from './hostlist.js';
import { readMpiRank } from './mpi.js';
import { checkRank, readInt, requireInt, requireVar } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv } from './types.js';

const NOT_IN_STEP = 'Not running inside a Slurm step? Start hpctrain with srun inside the batch script.';

/**
 * Reads SLURM_JOB_ID, SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS),
 * SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST), SLURM_STEP_TASKS_PER_NODE (or
 * SLURM_TASKS_PER_NODE), SLURM_LOCALID, SLURM_NODEID and SLURM_DISTRIBUTION. Under mpirun the
 * rank, size and local rank come from the MPI launcher instead (see readMpiRank).
 */
export const slurmProvider: EnvProvider = {
  name: 'slurm',
  detect: (env) => env.SLURM_JOB_ID !== undefined || env.SLURM_JOBID !== undefined,
  read(env: Env, _io: EnvIo): JobEnv {
    const jobId = env.SLURM_JOB_ID || requireVar(env, 'SLURM_JOBID', 'Not running inside a Slurm job?');
    const nodelistVar = env.SLURM_STEP_NODELIST !== undefined ? 'SLURM_STEP_NODELIST' : 'SLURM_JOB_NODELIST';
    const hosts = parseHostlistVar(env, nodelistVar, requireVar(env, nodelistVar, NOT_IN_STEP));
    const mpi = readMpiRank(env);
    let rank: number;
    let size: number;
    let localRank: number;
    if (mpi) {
      ({ rank, localRank: localRank = 0 } = mpi);
      size = mpi.size!;
    } else {
      rank = requireInt(env, 'SLURM_PROCID', NOT_IN_STEP);
      const sizeVar = env.SLURM_STEP_NUM_TASKS !== undefined ? 'SLURM_STEP_NUM_TASKS' : 'SLURM_NTASKS';
      size = requireInt(env, sizeVar, NOT_IN_STEP, 1);
      checkRank(rank, size, 'SLURM_PROCID', sizeVar);
      localRank = readInt(env, 'SLURM_LOCALID') ?? 0;
    }
    const tasksVar = env.SLURM_STEP_TASKS_PER_NODE !== undefined ? 'SLURM_STEP_TASKS_PER_NODE' : 'SLURM_TASKS_PER_NODE';
    const tasksPerNode = env[tasksVar] ? parseTasksVar(tasksVar, env[tasksVar]!) : hosts.map(() => Math.ceil(size / hosts.length));
    if (tasksPerNode.length !== hosts.length) {
      throw new EnvironmentError(`${tasksVar}="${env[tasksVar]}" lists ${tasksPerNode.length} nodes but ${nodelistVar} has ${hosts.length}.`);
    }
    const cyclic = (env.SLURM_DISTRIBUTION ?? '').startsWith('cyclic');
    const rankHosts = placeRanks(hosts, tasksPerNode, size, cyclic);
    const nodeIndex = readInt(env, 'SLURM_NODEID') ?? hosts.indexOf(rankHosts[rank]!);
    if (nodeIndex >= hosts.length) {
      throw new EnvironmentError(`SLURM_NODEID=${nodeIndex} is past the ${hosts.length} nodes of ${nodelistVar}.`);
    }
    return {
      scheduler: 'slurm',
      launcher: mpi ? mpi.launcher : 'srun',
      jobId,
      rank,
      size,
      localRank,
      nodeIndex,
      hosts,
      rankHosts,
      coordinator: rankHosts[0]!,
    };
  },
};

/** Where srun puts each rank: block (the default) fills a node before the next; cyclic deals round-robin. */
export function placeRanks(hosts: readonly string[], tasksPerNode: readonly number[], size: number, cyclic: boolean): string[] {
  const placed: string[] = [];
  if (cyclic) {
    const left = [...tasksPerNode];
    while (placed.length < size && left.some((n) => n > 0)) {
      hosts.forEach((host, i) => {
        if (left[i]! > 0 && placed.length < size) {
          placed.push(host);
          left[i]!--;
        }
      });
    }
  } else {
    hosts.forEach((host, i) => {
      for (let t = 0; t < tasksPerNode[i]! && placed.length < size; t++) placed.push(host);
    });
  }
  // More ranks than slots (overcommit): wrap around so every rank still names a node.
  for (let r = placed.length; r < size; r++) placed.push(hosts[r % hosts.length]!);
  return placed;
}

function parseHostlistVar(env: Env, name: string, value: string): string[] {
  try {
    const hosts = expandHostlist(value);
    if (hosts.length === 0) throw new HostlistError(value, 'no hosts');
    return hosts;
  } catch (error) {
    if (!(error instanceof HostlistError)) throw error;
    throw new EnvironmentError(`${name}="${env[name]}" is not a Slurm hostlist: ${error.message}.`);
  }
}

function parseTasksVar(name: string, value: string): number[] {
  try {
    return expandTasksPerNode(value);
  } catch (error) {
    if (!(error instanceof HostlistError)) throw error;
    throw new EnvironmentError(`${name}="${value}" is not a task count list like "2(x3),1": ${error.message}.`);
  }
}
