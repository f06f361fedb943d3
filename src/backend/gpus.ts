// Which NVIDIA GPUs this process can see, and which one a rank should use. Read from plain
// inputs (the environment, a device listing, nvidia-smi's output) so tests use literals.

export interface GpuInfo {
  index: number;
  name: string;
  memoryMiB: number | undefined;
}

/** `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` -> GpuInfo[]. */
export function parseNvidiaSmi(output: string): GpuInfo[] {
  return output.split('\n').map((line) => line.trim()).filter(Boolean).flatMap((line) => {
    const [index, name, memory] = line.split(',').map((part) => part.trim());
    if (!/^\d+$/.test(index ?? '') || !name) return [];
    return [{ index: Number(index), name, memoryMiB: /^\d+$/.test(memory ?? '') ? Number(memory) : undefined }];
  });
}

/** /dev entries -> GPU indices: nvidia0, nvidia1, ... (not nvidiactl or nvidia-uvm). */
export function gpuIndicesFromDevices(devEntries: readonly string[]): number[] {
  return devEntries.flatMap((entry) => (/^nvidia(\d+)$/.test(entry) ? [Number(entry.slice(6))] : [])).sort((a, b) => a - b);
}

export interface GpuBinding {
  /** The value CUDA_VISIBLE_DEVICES should have, or undefined to leave it alone. */
  cudaVisibleDevices: string | undefined;
  describe: string;
}

/**
 * One GPU per rank on a shared node: local rank r takes GPU r (mod the count), unless the
 * scheduler already chose (Slurm's --gpus-per-task and gres, PBS's cgroups set
 * CUDA_VISIBLE_DEVICES), in which case its choice stands.
 */
export function bindGpu(cudaVisibleDevices: string | undefined, localRank: number, gpuCount: number): GpuBinding {
  if (cudaVisibleDevices !== undefined) {
    return { cudaVisibleDevices: undefined, describe: `CUDA_VISIBLE_DEVICES=${cudaVisibleDevices} was set by the scheduler or the user; keeping it` };
  }
  if (gpuCount === 0) return { cudaVisibleDevices: undefined, describe: 'no GPU visible' };
  const gpu = String(localRank % gpuCount);
  return { cudaVisibleDevices: gpu, describe: `local rank ${localRank} uses GPU ${gpu} of ${gpuCount} (CUDA_VISIBLE_DEVICES=${gpu})` };
}

/** The GPUs of this node: nvidia-smi's list when it runs, else the /dev/nvidiaN devices. */
export async function readGpus(): Promise<{ gpus: GpuInfo[]; source: string }> {
  const { execFile } = await import('node:child_process');
  const { readdirSync } = await import('node:fs');
  const smi = await new Promise<string | undefined>((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'], { timeout: 10_000 },
      (error, stdout) => resolve(error ? undefined : stdout));
  });
  if (smi !== undefined) return { gpus: parseNvidiaSmi(smi), source: 'nvidia-smi' };
  let entries: string[] = [];
  try {
    entries = readdirSync('/dev');
  } catch {
    // No /dev to read (not Linux): no NVIDIA GPU either.
  }
  const gpus = gpuIndicesFromDevices(entries).map((index) => ({ index, name: 'NVIDIA GPU (nvidia-smi not found)', memoryMiB: undefined }));
  return { gpus, source: '/dev/nvidia*' };
}
