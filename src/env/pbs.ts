// PBS Pro and Torque: the job gives the nodes (PBS_NODEFILE); the launcher inside it gives the
// rank: aprun on a Cray, mpirun (Open MPI) or mpiexec (MPICH, Cray PMI) elsewhere.
import { EnvironmentError } from '../errors.js';
import { readAlpsRank } from './alps.js';
import { readMpiRank } from './mpi.js';
import { localPlaceOf, placeRanks } from './placement.js';
import { readInt, requireVar, uniqueInOrder } from './read-vars.js';
import type { Env, EnvIo, EnvProvider, JobEnv } from './types.js';

/**
 * Reads PBS_JOBID and PBS_NODEFILE (one line per slot, so a node appears once per core or GPU
 * it gives), then the launcher's rank: ALPS_APP_PE under aprun (size from HPCTRAIN_NPROCS or the
 * node count), OMPI_COMM_WORLD_* under Open MPI, PMI_RANK/PMI_SIZE under MPICH or Cray PMI; and
 * HPCTRAIN_TASKS_PER_NODE, the ranks pbs/train.pbs starts on each node.
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
        'Start hpctrain on the nodes with aprun -n N -N K (Cray), mpirun or mpiexec inside the PBS script; see pbs/train.pbs.',
      );
    }
    const perNode = readInt(env, 'HPCTRAIN_TASKS_PER_NODE', 1);
    const size = launched.size ?? hosts.length * (perNode ?? 1);
    if (launched.rank >= size) {
      throw new EnvironmentError(`rank ${launched.rank} from ${launched.launcher} is not below the job size ${size}.`);
    }
    const rankHosts = placeOnNodes(hosts, slots, size, perNode);
    // The launcher's word on the local rank counts most: it knows the machine the rank runs on.
    const placed = localPlaceOf(rankHosts, launched.rank);
    return {
      scheduler: 'pbs',
      launcher: launched.launcher,
      jobId,
      rank: launched.rank,
      size,
      localRank: launched.localRank ?? placed.localRank,
      localSize: launched.localSize ?? placed.localSize,
      nodeIndex: hosts.indexOf(rankHosts[launched.rank]!),
      hosts,
      rankHosts,
      coordinator: rankHosts[0]!,
    };
  },
};

/**
 * Where each rank runs. pbs/train.pbs starts HPCTRAIN_TASKS_PER_NODE ranks on each node in node
 * order (aprun -N, mpirun over N slots per node, mpiexec -ppn), so rank r is on node floor(r / N);
 * without it, one process per node is the scripts' layout, and otherwise ranks fill the slots in
 * nodefile order, as mpirun does with PBS_NODEFILE as its hostfile.
 */
function placeOnNodes(hosts: readonly string[], slots: readonly string[], size: number, perNode: number | undefined): string[] {
  if (perNode !== undefined) {
    if (size > perNode * hosts.length) {
      throw new EnvironmentError(
        `the launcher started ${size} ranks, more than HPCTRAIN_TASKS_PER_NODE=${perNode} on each of the ${hosts.length} node(s) of PBS_NODEFILE.`,
        'start the ranks with pbs/train.pbs, which sets both, or unset HPCTRAIN_TASKS_PER_NODE when launching by hand.',
      );
    }
    return placeRanks(hosts, hosts.map(() => perNode), size, false);
  }
  if (size === hosts.length) return [...hosts];
  return Array.from({ length: size }, (_, r) => slots[r % slots.length]!);
}

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
