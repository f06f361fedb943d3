// Which NVIDIA GPUs this process can see, and which one a rank should use. Read from plain
// inputs (the environment, a device listing, nvidia-smi's output) so tests use literals.
import type { LocalPlace } from '../env/placement.js';
import type { Env } from '../env/types.js';

export interface GpuInfo {
  /** nvidia-smi's index, the node's own numbering. */
  index: number;
  /** GPU-..., what CUDA_VISIBLE_DEVICES may name instead of an index; unknown without nvidia-smi. */
  uuid: string | undefined;
  name: string;
  memoryMiB: number | undefined;
}

const NVIDIA_SMI_QUERY = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'];

/** `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits` -> GpuInfo[]. */
export function parseNvidiaSmi(output: string): GpuInfo[] {
  return output.split('\n').map((line) => line.trim()).filter(Boolean).flatMap((line) => {
    const [index, uuid, name, memory] = line.split(',').map((part) => part.trim());
    if (!/^\d+$/.test(index ?? '') || !name) return [];
    return [{ index: Number(index), uuid: uuid || undefined, name, memoryMiB: /^\d+$/.test(memory ?? '') ? Number(memory) : undefined }];
  });
}

/** /dev entries -> GPU indices: nvidia0, nvidia1, ... (not nvidiactl or nvidia-uvm). */
export function gpuIndicesFromDevices(devEntries: readonly string[]): number[] {
  return devEntries.flatMap((entry) => (/^nvidia(\d+)$/.test(entry) ? [Number(entry.slice(6))] : [])).sort((a, b) => a - b);
}

/** What the environment says about this process's GPUs; read once, at the edge (readGpuEnv). */
export interface GpuEnv {
  /** CUDA_VISIBLE_DEVICES as the scheduler or the user set it; undefined when unset. */
  cudaVisibleDevices: string | undefined;
  /**
   * The scheduler's GPUs for this process on this node by global id (the node's own numbering),
   * and the variable that listed them. Under cgroups CUDA_VISIBLE_DEVICES is renumbered from 0,
   * and this is where the node's numbers remain.
   */
  assigned: { variable: string; ids: string[] } | undefined;
}

/**
 * Reads CUDA_VISIBLE_DEVICES and SLURM_STEP_GPUS (srun's tasks), or SLURM_JOB_GPUS outside a step
 * (SLURM_STEPID unset): a step's tasks inherit SLURM_JOB_GPUS from the batch script, where it
 * names the first node's GPUs, not theirs.
 */
export function readGpuEnv(env: Env): GpuEnv {
  const inStep = env.SLURM_STEPID !== undefined || env.SLURM_STEP_ID !== undefined;
  const variable = env.SLURM_STEP_GPUS ? 'SLURM_STEP_GPUS' : env.SLURM_JOB_GPUS && !inStep ? 'SLURM_JOB_GPUS' : undefined;
  const ids = variable ? parseIdList(env[variable]!) : undefined;
  return { cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES, assigned: variable && ids ? { variable, ids } : undefined };
}

/** "0,2-3" -> ["0", "2", "3"]; undefined when it is not such a list. */
function parseIdList(value: string): string[] | undefined {
  const ids: string[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!range) return undefined;
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    for (let id = first; id <= last; id++) ids.push(String(id));
  }
  return ids;
}

export interface BoundGpu {
  /** Its place among the GPUs the process saw: the CUDA device number before the binding. */
  visibleIndex: number;
  /** What CUDA_VISIBLE_DEVICES names it by: an index in the process's numbering, or a GPU-/MIG- UUID. */
  id: string;
  /** The node's own number for it (the scheduler's global id, nvidia-smi's index), when known. */
  globalId: string | undefined;
}

export interface GpuBinding {
  /** The value to give CUDA_VISIBLE_DEVICES before a backend loads, or undefined to leave it alone. */
  cudaVisibleDevices: string | undefined;
  /** This rank's GPU; undefined: the CPU. */
  device: BoundGpu | undefined;
  /** The GPUs the rank sees once bound (0 or 1): what backend selection should count. */
  gpuCount: number;
  /** The log line: local rank and device, in the process's numbering and the node's. */
  describe: string;
}

/**
 * One GPU per rank, chosen from what this process sees: the entries of CUDA_VISIBLE_DEVICES when
 * it is set (the scheduler's choice, renumbered from 0 under Slurm's cgroups, UUIDs under PBS's
 * cgroup hook), else every GPU of the node. One visible: that one, whatever the local rank (the
 * scheduler bound the task, e.g. srun --gpus-per-task=1). Several: the local rank's, by position.
 * More local ranks than GPUs share them round-robin, and the line says so: an error would also
 * stop ranks that train on the CPU (--backend wasm) on a GPU node. None visible: the CPU.
 */
export function bindGpu(gpuEnv: GpuEnv, gpus: readonly GpuInfo[], place: LocalPlace): GpuBinding {
  const who = `local rank ${place.localRank} of ${place.localSize}`;
  const set = gpuEnv.cudaVisibleDevices;
  const visible = gpus.length === 0 ? [] : visibleIds(set, gpus);
  if (visible.length === 0) {
    const why = gpus.length > 0 ? ` (CUDA_VISIBLE_DEVICES="${set}" hides the node's ${gpus.length})`
      : set ? ` (CUDA_VISIBLE_DEVICES=${set}, but this node shows no NVIDIA device)` : '';
    return { cudaVisibleDevices: undefined, device: undefined, gpuCount: 0, describe: `${who}, no GPU: CPU${why}` };
  }
  const visibleIndex = place.localRank % visible.length;
  const id = visible[visibleIndex]!;
  const globalId = globalIdOf(visibleIndex, id, visible.length, gpuEnv, gpus);
  const seen = set === undefined ? `the node's ${gpus.length} with CUDA_VISIBLE_DEVICES unset` : `CUDA_VISIBLE_DEVICES=${set}`;
  const parts = [`${who}, GPU ${visibleIndex} of ${seen}${globalId === undefined ? '' : ` (global id ${globalId})`}`];
  // One GPU left visible, so that the backend's device 0 is this rank's.
  if (visible.length > 1) parts.push(`sets CUDA_VISIBLE_DEVICES=${id}`);
  if (visible.length > 1 && place.localRank >= visible.length) {
    parts.push(`shared with local rank ${visibleIndex}: ${place.localSize} ranks on this node for ${visible.length} GPUs; ` +
      `for one rank per GPU set HPCTRAIN_TASKS_PER_NODE=${visible.length}`);
  }
  return { cudaVisibleDevices: visible.length > 1 ? id : undefined, device: { visibleIndex, id, globalId }, gpuCount: 1, describe: parts.join('; ') };
}

/**
 * CUDA_VISIBLE_DEVICES's entries up to the first that names no device (CUDA stops there: "",
 * "-1" and "NoDevFiles" hide every GPU). Unset: the node's GPUs, by UUID where nvidia-smi gives
 * it, since CUDA numbers devices fastest first, not in nvidia-smi's bus order.
 */
function visibleIds(cudaVisibleDevices: string | undefined, gpus: readonly GpuInfo[]): string[] {
  if (cudaVisibleDevices === undefined) return gpus.map((gpu) => gpu.uuid ?? String(gpu.index));
  const ids: string[] = [];
  for (const entry of cudaVisibleDevices.split(',').map((e) => e.trim())) {
    if (!/^(\d+|GPU-[\w-]+|MIG-[\w/-]+)$/.test(entry)) break;
    ids.push(entry);
  }
  return ids;
}

/**
 * The scheduler's list, when it names as many GPUs as the process sees (both in the same order);
 * a UUID's nvidia-smi index; nvidia-smi's index when nothing renumbered them. Otherwise unknown: a
 * cgroup may have renumbered the entries, and guessing would name another GPU.
 */
function globalIdOf(visibleIndex: number, id: string, visibleCount: number, gpuEnv: GpuEnv, gpus: readonly GpuInfo[]): string | undefined {
  if (gpuEnv.assigned?.ids.length === visibleCount) return gpuEnv.assigned.ids[visibleIndex];
  const byUuid = gpus.find((gpu) => gpu.uuid !== undefined && gpu.uuid === id);
  if (byUuid) return String(byUuid.index);
  if (gpuEnv.cudaVisibleDevices === undefined) return String(gpus[visibleIndex]!.index);
  return undefined;
}

/** The GPUs of this node: nvidia-smi's list when it runs, else the /dev/nvidiaN devices. */
export async function readGpus(): Promise<{ gpus: GpuInfo[]; source: string }> {
  const { execFile } = await import('node:child_process');
  const { readdirSync } = await import('node:fs');
  const smi = await new Promise<string | undefined>((resolve) => {
    execFile('nvidia-smi', NVIDIA_SMI_QUERY, { timeout: 10_000 },
      (error, stdout) => resolve(error ? undefined : stdout));
  });
  if (smi !== undefined) return { gpus: parseNvidiaSmi(smi), source: 'nvidia-smi' };
  let entries: string[] = [];
  try {
    entries = readdirSync('/dev');
  } catch {
    // No /dev to read (not Linux): no NVIDIA GPU either.
  }
  const gpus = gpuIndicesFromDevices(entries).map((index) => ({ index, uuid: undefined, name: 'NVIDIA GPU (nvidia-smi not found)', memoryMiB: undefined }));
  return { gpus, source: '/dev/nvidia*' };
}
