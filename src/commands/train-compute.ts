// `hpctrain train`'s first stage on a worker: where it computes. The GPU this rank binds to, the
// cores it may use (affinity, cgroup quota, SLURM_CPUS_PER_TASK, the ranks sharing the node), the
// tensor backend, and how those cores are split between compute and decoding threads.
import { bindGpu, readGpuEnv, readGpus } from '../backend/gpus.js';
import type { BackendAttempt, BackendName } from '../backend/select.js';
import { coresForRank, planThreads, readCoreFacts, type RankCores } from '../env/cores.js';
import type { OptionValues } from '../options.js';
import type { TrainGroup } from './train-group.js';
import type { CommandContext } from './types.js';

export interface ComputePlan {
  backend: BackendName;
  attempts: BackendAttempt[];
  cores: RankCores;
  /** Replicas of the model on their own threads (1: on the main thread). */
  computeThreads: number;
  /** 0 for synthetic data. */
  decodeThreads: number;
  /** Lines for the start-up log. */
  notes: string[];
}

export async function chooseCompute(values: OptionValues, context: CommandContext, group: TrainGroup): Promise<ComputePlan> {
  const notes: string[] = [];
  const { gpus } = await readGpus();
  const binding = bindGpu(readGpuEnv(context.env), gpus, group);
  // tfjs-node-gpu reads CUDA_VISIBLE_DEVICES when it loads, so it is set before selection.
  if (binding.cudaVisibleDevices !== undefined) process.env.CUDA_VISIBLE_DEVICES = binding.cudaVisibleDevices;
  // Every rank's own line: which of its node's devices it took.
  group.log(binding.describe);
  const cores = coresForRank(readCoreFacts(context.env), group.localSize);
  // libtensorflow (tfjs-node) sizes its intra-op pool from these when it loads; a user's own setting stands.
  for (const name of ['TF_NUM_INTRAOP_THREADS', 'OMP_NUM_THREADS']) if (context.env[name] === undefined) process.env[name] = String(cores.cores);
  const { selectBackend } = await import('../backend/select.js');
  const backend = await selectBackend(values.backend as BackendName | 'auto', binding.gpuCount);
  const requested = values['compute-threads'] as number | undefined;
  const decoding = values.data !== 'synthetic';
  const plan = planThreads(cores.cores, decoding, { computeThreads: requested, decodeThreads: values.threads as number | undefined });
  let computeThreads = plan.computeThreads;
  const batchSize = values['batch-size'] as number;
  if (backend.name !== 'wasm' && computeThreads > 1) {
    // tfjs-node spreads each op over its own pool of threads; a GPU needs one.
    if (requested !== undefined) notes.push(`--compute-threads ${requested} applies to the wasm backend; ${backend.name} computes with ${cores.cores} intra-op threads`);
    computeThreads = 1;
  }
  if (computeThreads > batchSize) {
    if (requested !== undefined) notes.push(`--compute-threads ${requested} is more than the ${batchSize} images of a batch: using ${batchSize}`);
    computeThreads = batchSize;
  }
  notes.push(`${cores.cores} core(s) (${cores.source}): ${computeThreads} compute thread(s)` +
    `${computeThreads > 1 ? `, ${Math.ceil(batchSize / computeThreads)} images or fewer each` : ''}` +
    `${decoding ? `, ${plan.decodeThreads} decode thread(s)` : ''}`);
  return { backend: backend.name, attempts: backend.attempts, cores, computeThreads, decodeThreads: plan.decodeThreads, notes };
}
