// Slurm: the tasks srun starts, one or more per node (or the ranks of mpirun inside an allocation).
import { EnvironmentError } from '../errors.js';
import { expandHostlist, expandTasksPerNode, HostlistError } from './hostlist.js';
import { readMpiRank } from './mpi.js';
import { localPlaceOf, placeRanks } from './placement.js';
import { checkRank, readInt, requireInt, requireVar } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv } from './types.js';

const NOT_IN_STEP = 'Not running inside a Slurm step? Start hpctrain with srun inside the batch script.';

/**
 * Reads SLURM_JOB_ID, SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS),
 * SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST), SLURM_STEP_TASKS_PER_NODE (or
 * SLURM_TASKS_PER_NODE), SLURM_LOCALID, SLURM_NODEID and SLURM_DISTRIBUTION. Under mpirun the
 * rank, size, local rank and local size come from the MPI launcher instead (see readMpiRank).
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
    if (mpi) {
      ({ rank } = mpi);
      size = mpi.size!;
    } else {
      rank = requireInt(env, 'SLURM_PROCID', NOT_IN_STEP);
      const sizeVar = env.SLURM_STEP_NUM_TASKS !== undefined ? 'SLURM_STEP_NUM_TASKS' : 'SLURM_NTASKS';
      size = requireInt(env, sizeVar, NOT_IN_STEP, 1);
      checkRank(rank, size, 'SLURM_PROCID', sizeVar);
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
    // srun says both (SLURM_LOCALID, the step's tasks on this node); under mpirun the MPI launcher does.
    const placed = localPlaceOf(rankHosts, rank);
    const localRank = (mpi ? mpi.localRank : readInt(env, 'SLURM_LOCALID')) ?? placed.localRank;
    const localSize = (mpi ? mpi.localSize : env[tasksVar] ? tasksPerNode[nodeIndex] : undefined) ?? placed.localSize;
    return {
      scheduler: 'slurm',
      launcher: mpi ? mpi.launcher : 'srun',
      jobId,
      rank,
      size,
      localRank,
      localSize,
      nodeIndex,
      hosts,
      rankHosts,
      coordinator: rankHosts[0]!,
    };
  },
};

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
