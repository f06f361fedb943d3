import assert from 'node:assert/strict';
import { bindGpu, gpuIndicesFromDevices, parseNvidiaSmi, readGpuEnv, type GpuBinding, type GpuInfo } from '../../src/backend/gpus.js';
import { detectEnv } from '../../src/env/detect.js';
import type { Env, EnvIo } from '../../src/env/types.js';

const nodefile = '/var/spool/pbs/aux/7.pbs';
const io: EnvIo = {
  readFile: (path) => (path === nodefile ? 'gn01\ngn01\ngn02\ngn02\n' : assert.fail(`unexpected readFile(${path})`)),
  hostname: () => 'gn02',
};

/** What nvidia-smi lists on a node of four GPUs (all of them, or those a cgroup leaves). */
function gpusOf(...indices: number[]): GpuInfo[] {
  return indices.map((index) => ({ index, uuid: `GPU-000${index}-aaaa`, name: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 }));
}

/** The whole path a rank takes at start: the environment, once, to its place on the node and its GPU. */
function bindFrom(env: Env, gpus: readonly GpuInfo[]): GpuBinding {
  return bindGpu(readGpuEnv(env), gpus, detectEnv(env, 'auto', io));
}

describe('backend/gpus', () => {
  it('reads nvidia-smi (index, uuid, name, memory) and /dev listings', () => {
    assert.deepEqual(parseNvidiaSmi('0, GPU-5f3c1d2e-aaaa, Tesla K20X, 5759\n1, GPU-9ab1-bbbb, NVIDIA A100-SXM4-40GB, 40960\n'), [
      { index: 0, uuid: 'GPU-5f3c1d2e-aaaa', name: 'Tesla K20X', memoryMiB: 5759 },
      { index: 1, uuid: 'GPU-9ab1-bbbb', name: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 },
    ]);
    assert.deepEqual(parseNvidiaSmi('No devices were found\n'), []);
    assert.deepEqual(gpuIndicesFromDevices(['null', 'nvidia1', 'nvidiactl', 'nvidia0', 'nvidia-uvm']), [0, 1]);
  });

  describe('Slurm', () => {
    // srun's variables for a task on the second of two nodes, 2 tasks per node.
    const task = (rank: number, local: number): Env => ({
      SLURM_JOB_ID: '88', SLURM_STEP_NODELIST: 'nid[00003-00004]', SLURM_STEP_NUM_TASKS: '4', SLURM_STEP_TASKS_PER_NODE: '2(x2)',
      SLURM_PROCID: String(rank), SLURM_NODEID: '1', SLURM_LOCALID: String(local), SLURM_STEPID: '0',
      // Inherited from the batch script on nid00003: not this node's GPUs.
      SLURM_JOB_GPUS: '0,1',
    });

    it('uses the one GPU a cgroup leaves, renumbered to 0, and names its global id from SLURM_STEP_GPUS', () => {
      const binding = bindFrom({ ...task(3, 1), SLURM_STEP_GPUS: '3', CUDA_VISIBLE_DEVICES: '0' }, gpusOf(0));
      assert.equal(binding.describe, 'local rank 1 of 2, GPU 0 of CUDA_VISIBLE_DEVICES=0 (global id 3)');
      assert.deepEqual(binding.device, { visibleIndex: 0, id: '0', globalId: '3' });
      assert.equal(binding.cudaVisibleDevices, undefined, 'one visible GPU: nothing to narrow');
      assert.equal(binding.gpuCount, 1);
    });

    it('takes the local rank\'s GPU of several visible, by position, and narrows CUDA_VISIBLE_DEVICES to it', () => {
      // Without cgroups Slurm shows the global ids; with them, 0,1 stand for the same GPUs 2,3.
      const plain = bindFrom({ ...task(3, 1), SLURM_STEP_GPUS: '2,3', CUDA_VISIBLE_DEVICES: '2,3' }, gpusOf(0, 1, 2, 3));
      assert.equal(plain.describe, 'local rank 1 of 2, GPU 1 of CUDA_VISIBLE_DEVICES=2,3 (global id 3); sets CUDA_VISIBLE_DEVICES=3');
      assert.equal(plain.cudaVisibleDevices, '3');
      const renumbered = bindFrom({ ...task(3, 1), SLURM_STEP_GPUS: '2,3', CUDA_VISIBLE_DEVICES: '0,1' }, gpusOf(0, 1));
      assert.equal(renumbered.describe, 'local rank 1 of 2, GPU 1 of CUDA_VISIBLE_DEVICES=0,1 (global id 3); sets CUDA_VISIBLE_DEVICES=1');
      assert.equal(renumbered.cudaVisibleDevices, '1');
      const first = bindFrom({ ...task(2, 0), SLURM_STEP_GPUS: '2,3', CUDA_VISIBLE_DEVICES: '0,1' }, gpusOf(0, 1));
      assert.deepEqual([first.cudaVisibleDevices, first.device?.globalId], ['0', '2']);
    });

    it('does not guess a global id when the step\'s list and the visible set differ (srun --gpus-per-task=1)', () => {
      const binding = bindFrom({ ...task(3, 1), SLURM_STEP_GPUS: '2,3', CUDA_VISIBLE_DEVICES: '0' }, gpusOf(0));
      assert.equal(binding.describe, 'local rank 1 of 2, GPU 0 of CUDA_VISIBLE_DEVICES=0');
    });

    it('reads SLURM_JOB_GPUS only outside a step, where it names this node\'s GPUs', () => {
      assert.equal(readGpuEnv(task(3, 1)).assigned, undefined);
      assert.deepEqual(readGpuEnv({ SLURM_JOB_GPUS: '1,3', CUDA_VISIBLE_DEVICES: '0,1' }).assigned, { variable: 'SLURM_JOB_GPUS', ids: ['1', '3'] });
      assert.deepEqual(readGpuEnv({ SLURM_STEP_GPUS: '0-1,4' }).assigned, { variable: 'SLURM_STEP_GPUS', ids: ['0', '1', '4'] });
      assert.equal(readGpuEnv({ SLURM_STEP_GPUS: '(null)' }).assigned, undefined);
    });
  });

  describe('PBS', () => {
    const pbs: Env = { PBS_JOBID: '7.pbs', PBS_NODEFILE: nodefile, HPCTRAIN_TASKS_PER_NODE: '2' };

    it('maps the UUIDs PBS\'s cgroup hook puts in CUDA_VISIBLE_DEVICES to nvidia-smi\'s indices (mpirun, Open MPI local rank)', () => {
      const env: Env = {
        ...pbs, OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2',
        CUDA_VISIBLE_DEVICES: 'GPU-0002-aaaa,GPU-0003-aaaa',
      };
      const binding = bindFrom(env, gpusOf(2, 3));
      assert.equal(binding.describe, 'local rank 1 of 2, GPU 1 of CUDA_VISIBLE_DEVICES=GPU-0002-aaaa,GPU-0003-aaaa (global id 3); sets CUDA_VISIBLE_DEVICES=GPU-0003-aaaa');
      assert.equal(binding.cudaVisibleDevices, 'GPU-0003-aaaa');
    });

    it('uses a renumbered index without claiming a global id (aprun, local rank = ALPS_APP_PE mod 2)', () => {
      const binding = bindFrom({ ...pbs, ALPS_APP_PE: '2', HPCTRAIN_NPROCS: '4', CUDA_VISIBLE_DEVICES: '0,1' }, gpusOf(0, 1));
      assert.equal(binding.describe, 'local rank 0 of 2, GPU 0 of CUDA_VISIBLE_DEVICES=0,1; sets CUDA_VISIBLE_DEVICES=0');
    });
  });

  it('binds by the Open MPI local rank when nothing set CUDA_VISIBLE_DEVICES: the node\'s GPUs, by UUID', () => {
    const env: Env = { OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '2', OMPI_COMM_WORLD_LOCAL_SIZE: '4' };
    const binding = bindFrom(env, gpusOf(0, 1, 2, 3));
    // By UUID: CUDA numbers devices fastest first, nvidia-smi in bus order.
    assert.equal(binding.describe, 'local rank 2 of 4, GPU 2 of the node\'s 4 with CUDA_VISIBLE_DEVICES unset (global id 2); sets CUDA_VISIBLE_DEVICES=GPU-0002-aaaa');
    const withoutSmi = bindFrom(env, [0, 1, 2, 3].map((index) => ({ index, uuid: undefined, name: 'NVIDIA GPU', memoryMiB: undefined })));
    assert.equal(withoutSmi.cudaVisibleDevices, '2');
  });

  it('trains on the CPU when no GPU is visible, and says why when the node has some', () => {
    const none = bindFrom({ HPCTRAIN_RANK: '0', HPCTRAIN_SIZE: '1' }, []);
    assert.deepEqual(none, { cudaVisibleDevices: undefined, device: undefined, gpuCount: 0, describe: 'local rank 0 of 1, no GPU: CPU' });
    assert.equal(bindFrom({ CUDA_VISIBLE_DEVICES: '' }, gpusOf(0, 1)).describe, 'local rank 0 of 1, no GPU: CPU (CUDA_VISIBLE_DEVICES="" hides the node\'s 2)');
    assert.equal(bindFrom({ CUDA_VISIBLE_DEVICES: '-1' }, gpusOf(0)).gpuCount, 0);
    assert.equal(bindFrom({ CUDA_VISIBLE_DEVICES: '0' }, []).describe, 'local rank 0 of 1, no GPU: CPU (CUDA_VISIBLE_DEVICES=0, but this node shows no NVIDIA device)');
  });

  it('stops at the first entry of CUDA_VISIBLE_DEVICES that names no device, as CUDA does', () => {
    const binding = bindGpu(readGpuEnv({ CUDA_VISIBLE_DEVICES: '1,-1,0' }), gpusOf(0, 1), { localRank: 1, localSize: 2 });
    assert.equal(binding.describe, 'local rank 1 of 2, GPU 0 of CUDA_VISIBLE_DEVICES=1,-1,0');
  });

  it('shares GPUs round-robin when a node runs more ranks than it shows GPUs, and says how to fix it', () => {
    const env = (local: number): Env => ({ HPCTRAIN_RANK: String(local), HPCTRAIN_SIZE: '4', CUDA_VISIBLE_DEVICES: '0,1' });
    const bindings = [0, 1, 2, 3].map((local) => bindFrom(env(local), gpusOf(0, 1)));
    assert.deepEqual(bindings.map((b) => b.cudaVisibleDevices), ['0', '1', '0', '1']);
    assert.equal(bindings[2]!.describe, 'local rank 2 of 4, GPU 0 of CUDA_VISIBLE_DEVICES=0,1; sets CUDA_VISIBLE_DEVICES=0; ' +
      'shared with local rank 0: 4 ranks on this node for 2 GPUs; for one rank per GPU set HPCTRAIN_TASKS_PER_NODE=2');
    assert.doesNotMatch(bindings[1]!.describe, /shared/);
  });
});
