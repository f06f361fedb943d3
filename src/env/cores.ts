// How many cores a rank may compute on, from what the node and the scheduler say: the CPU
// affinity (srun and mpirun bind tasks to cores; taskset and cpusets too), a cgroup CPU quota
// (containers, some sites' Slurm and PBS), SLURM_CPUS_PER_TASK, and how many of the job's ranks
// share the node. Read once at the edge (readCoreFacts); decided from plain values (coresForRank).
import { availableParallelism, cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Env } from './types.js';

export interface CoreFacts {
  /** CPUs of the node. */
  nodeCpus: number;
  /** CPUs this process may run on (sched_getaffinity). */
  affinity: number;
  /** The cgroup's CPU quota in cores (cpu.max, or cfs_quota_us / cfs_period_us), if it has one. */
  cgroupQuota: number | undefined;
  /** SLURM_CPUS_PER_TASK, when Slurm set it (sbatch/srun --cpus-per-task). */
  slurmCpusPerTask: number | undefined;
}

export interface RankCores {
  cores: number;
  /** What decided it, for the start-up log. */
  source: string;
}

/** The cores one of `ranksOnNode` ranks of this node may use: at least 1. */
export function coresForRank(facts: CoreFacts, ranksOnNode: number): RankCores {
  const limits: { cores: number; source: string }[] = [{ cores: facts.affinity, source: `CPU affinity ${facts.affinity} of the node's ${facts.nodeCpus}` }];
  if (facts.cgroupQuota !== undefined) limits.push({ cores: Math.floor(facts.cgroupQuota), source: `cgroup CPU quota ${facts.cgroupQuota}` });
  if (facts.slurmCpusPerTask !== undefined) limits.push({ cores: facts.slurmCpusPerTask, source: `SLURM_CPUS_PER_TASK=${facts.slurmCpusPerTask}` });
  const limit = limits.reduce((a, b) => (b.cores < a.cores ? b : a));
  // A limit that is the node's (no binding, no quota, no --cpus-per-task) is shared by every rank on it.
  const perRank = ranksOnNode > 1 && limit.cores >= facts.nodeCpus && facts.slurmCpusPerTask === undefined;
  if (perRank) {
    const cores = Math.max(1, Math.floor(limit.cores / ranksOnNode));
    return { cores, source: `${limit.source}, shared by ${ranksOnNode} ranks on the node` };
  }
  return { cores: Math.max(1, limit.cores), source: limit.source };
}

/** cgroup v2's cpu.max ("max 100000" or "200000 100000") or v1's quota and period -> cores, or undefined. */
export function parseCgroupQuota(cpuMax: string | undefined, cfsQuotaUs?: string, cfsPeriodUs?: string): number | undefined {
  const [quota, period] = cpuMax !== undefined ? cpuMax.trim().split(/\s+/) : [cfsQuotaUs?.trim(), cfsPeriodUs?.trim()];
  const q = Number(quota);
  const p = Number(period);
  if (!quota || quota === 'max' || !Number.isFinite(q) || q <= 0 || !Number.isFinite(p) || p <= 0) return undefined;
  return q / p;
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function readCoreFacts(env: Env): CoreFacts {
  const cpusPerTask = Number(env.SLURM_CPUS_PER_TASK);
  return {
    nodeCpus: cpus().length,
    affinity: availableParallelism(),
    cgroupQuota: parseCgroupQuota(readOptional('/sys/fs/cgroup/cpu.max'),
      readOptional('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), readOptional('/sys/fs/cgroup/cpu/cpu.cfs_period_us')),
    slurmCpusPerTask: Number.isInteger(cpusPerTask) && cpusPerTask > 0 ? cpusPerTask : undefined,
  };
}

export interface ThreadPlan {
  computeThreads: number;
  decodeThreads: number;
}

/**
 * The default split of a rank's cores: with image files to decode, ceil(cores / 8) decode threads
 * (about what libvips needs to keep up with the step here: see the README), which share the cores
 * with the compute threads on small nodes and have cores of their own from 8 on; without (synthetic
 * data), every core computes. Either is overridden by its flag.
 */
export function planThreads(cores: number, decoding: boolean, overrides: { computeThreads?: number; decodeThreads?: number } = {}): ThreadPlan {
  const decodeDefault = decoding ? Math.ceil(cores / 8) : 0;
  const decodeThreads = overrides.decodeThreads ?? Math.max(decoding ? 1 : 0, decodeDefault);
  const reserved = cores >= 8 ? decodeThreads : 0;
  const computeThreads = overrides.computeThreads ?? Math.max(1, cores - reserved);
  return { computeThreads, decodeThreads };
}
