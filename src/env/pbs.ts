// PBS Pro and Torque: the job gives the nodes (PBS_NODEFILE); the launcher inside it gives the
// rank: aprun on a Cray, mpirun (Open MPI) or mpiexec (MPICH, Cray PMI) elsewhere.
import { EnvironmentError } from '../errors.js';
import { readAlpsRank } from './alps.js';
import { readMpiRank } from './mpi.js';
import { requireVar, uniqueInOrder } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv } from './types.js';

/**
 * Reads PBS_JOBID and PBS_NODEFILE (one line per slot, so a node appears once per core or GPU
 * it gives), then the launcher's rank: ALPS_APP_PE under aprun (size from HPCTRAIN_NPROCS or the
 * node count), OMPI_COMM_WORLD_* under Open MPI, PMI_RANK/PMI_SIZE under MPICH or Cray PMI.
 */
export const pbsProvider: EnvProvider = {
  name: 'pbs',
  detect: (env) => env.PBS_JOBID !== undefined,
  read(env: Env, io: EnvIo): JobEnv {
    const jobId = requireVar(env, 'PBS_JOBID', 'Not running inside a PBS or Torque job?');
    const nodefile = requireVar(env, 'PBS_NODEFILE', 'PBS and Torque set it in every batch job; was the job started with qsub?');
    const slots = readNodefile(nodefile, io);
    const hosts = uniqueInOrder(slots);
    const launched = readAlpsRank(env) ?? readMpiRank(env);
    if (!launched) {
      throw new EnvironmentError(
        `PBS job ${jobId} found, but no launcher rank (ALPS_APP_PE, OMPI_COMM_WORLD_RANK or PMI_RANK) in the environment.`,
        'Start one hpctrain per node with aprun -n N -N 1 (Cray), mpirun or mpiexec inside the PBS script; see pbs/train.pbs.',
      );
    }
    const size = launched.size ?? hosts.length;
    if (launched.rank >= size) {
      throw new EnvironmentError(`rank ${launched.rank} from ${launched.launcher} is not below the job size ${size}.`);
    }
    // One process per node is the layout the scripts use; otherwise ranks fill slots in nodefile order.
    const rankHosts = size === hosts.length ? [...hosts] : Array.from({ length: size }, (_, r) => slots[r % slots.length]!);
    return {
      scheduler: 'pbs',
      launcher: launched.launcher,
      jobId,
      rank: launched.rank,
      size,
      localRank: launched.localRank ?? rankHosts.slice(0, launched.rank).filter((h) => h === rankHosts[launched.rank]).length,
      nodeIndex: hosts.indexOf(rankHosts[launched.rank]!),
      hosts,
      rankHosts,
      coordinator: rankHosts[0]!,
    };
  },
};

function readNodefile(path: string, io: EnvIo): string[] {
  let text: string;
  try {
    text = io.readFile(path);
  } catch (error) {
    throw new EnvironmentError(`PBS_NODEFILE=${path} cannot be read (${(error as Error).message}). Is it on a file system this node mounts?`);
  }
  const slots = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  if (slots.length === 0) throw new EnvironmentError(`PBS_NODEFILE=${path} lists no nodes.`);
  return slots;
}
