// MPI launchers: Open MPI's mpirun and MPICH/Hydra or Cray PMI. Used on their own (plain MPI,
// no batch system) and inside PBS and Slurm jobs, where the launcher's rank is the truth.
import { EnvironmentError } from '../errors.js';
import { checkRank, readInt, requireInt } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv, LauncherName } from './types.js';

export interface LauncherRank {
  launcher: LauncherName;
  rank: number;
  /** Undefined when the launcher does not say (aprun). */
  size: number | undefined;
  localRank: number | undefined;
  /** The processes on this node; undefined when the launcher does not say. */
  localSize: number | undefined;
}

/**
 * Open MPI: OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK and
 * OMPI_COMM_WORLD_LOCAL_SIZE. MPICH/Hydra and Cray PMI: PMI_RANK, PMI_SIZE, MPI_LOCALRANKID or
 * PMI_LOCAL_RANK, MPI_LOCALNRANKS or PMI_LOCAL_SIZE.
 */
export function readMpiRank(env: Env): LauncherRank | undefined {
  if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    const why = 'Open MPI sets it for every process that mpirun starts.';
    const rank = requireInt(env, 'OMPI_COMM_WORLD_RANK', why);
    const size = requireInt(env, 'OMPI_COMM_WORLD_SIZE', why, 1);
    checkRank(rank, size, 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE');
    return {
      launcher: 'mpirun', rank, size, localRank: readInt(env, 'OMPI_COMM_WORLD_LOCAL_RANK'), localSize: readInt(env, 'OMPI_COMM_WORLD_LOCAL_SIZE', 1),
    };
  }
  if (env.PMI_RANK !== undefined) {
    const why = 'MPICH (mpiexec/Hydra) and Cray PMI set it for every process they start.';
    const rank = requireInt(env, 'PMI_RANK', why);
    const size = requireInt(env, 'PMI_SIZE', why, 1);
    checkRank(rank, size, 'PMI_RANK', 'PMI_SIZE');
    return {
      launcher: 'pmi', rank, size, localRank: readInt(env, 'MPI_LOCALRANKID') ?? readInt(env, 'PMI_LOCAL_RANK'),
      localSize: readInt(env, 'MPI_LOCALNRANKS', 1) ?? readInt(env, 'PMI_LOCAL_SIZE', 1),
    };
  }
  return undefined;
}

/**
 * Plain MPI, outside any batch system: the variables of readMpiRank, plus HPCTRAIN_COORDINATOR
 * (the host of rank 0) when the ranks span several hosts, since MPI does not tell us where rank 0
 * runs. The launcher's local size (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS) tells whether all
 * ranks share this host.
 */
export const mpiProvider: EnvProvider = {
  name: 'mpi',
  detect: (env) => env.OMPI_COMM_WORLD_RANK !== undefined || env.PMI_RANK !== undefined,
  read(env: Env, io: EnvIo): JobEnv {
    const launched = readMpiRank(env);
    // Reached without the marker variables only when --scheduler mpi is forced.
    if (!launched) {
      throw new EnvironmentError('OMPI_COMM_WORLD_RANK or PMI_RANK not found in environment. Not started by mpirun or mpiexec?');
    }
    const size = launched.size!;
    const host = io.hostname();
    const allLocal = launched.localSize === size;
    const coordinator = env.HPCTRAIN_COORDINATOR || (allLocal ? host : undefined);
    if (!coordinator) {
      throw new EnvironmentError(
        'HPCTRAIN_COORDINATOR not found in environment. Under plain MPI the ranks span several hosts and ' +
          'nothing says which one runs rank 0.',
        'export HPCTRAIN_COORDINATOR=<host of rank 0> (mpirun -x HPCTRAIN_COORDINATOR), or run inside a Slurm or PBS job.',
      );
    }
    const jobId = env.HPCTRAIN_JOB_ID || env.OMPI_MCA_ess_base_jobid || env.PMI_JOBID || 'mpi';
    return {
      scheduler: 'mpi',
      launcher: launched.launcher,
      jobId,
      rank: launched.rank,
      size,
      localRank: launched.localRank ?? 0,
      // Without the launcher's word, one process per host: the layout of the batch scripts' default.
      localSize: launched.localSize ?? 1,
      nodeIndex: allLocal ? 0 : launched.rank,
      hosts: allLocal ? [host] : [],
      rankHosts: Array.from({ length: size }, (_, r) => (allLocal ? host : r === 0 ? coordinator : '?')),
      coordinator,
    };
  },
};
