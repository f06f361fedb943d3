import assert from 'node:assert/strict';
import { EnvironmentError, HpcTrainError, OptionsError } from '../../src/errors.js';
import { detectEnv, PROVIDERS, SCHEDULER_CHOICES } from '../../src/env/detect.js';
import { localProvider } from '../../src/env/local.js';
import { mpiProvider } from '../../src/env/mpi.js';
import { pbsProvider } from '../../src/env/pbs.js';
import { slurmProvider } from '../../src/env/slurm.js';
import type { Env, EnvIo, JobEnv, SchedulerName } from '../../src/env/types.js';

/** Files by path and a host name; a missing file fails as readFileSync would. */
function fakeIo(files: Record<string, string> = {}, host = 'ws1'): EnvIo {
  return {
    readFile(path: string): string {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return text;
    },
    hostname: () => host,
  };
}

/** For providers that must take everything from the environment. */
const untouchableIo: EnvIo = {
  readFile: (path) => assert.fail(`unexpected readFile(${path})`),
  hostname: () => assert.fail('unexpected hostname()'),
};

/** The thrown error, checked to be an EnvironmentError whose message holds every fragment. */
function envError(read: () => unknown, ...fragments: string[]): EnvironmentError {
  let caught: unknown;
  try {
    read();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, 'expected an EnvironmentError, but nothing was thrown');
  assert.ok(caught instanceof EnvironmentError, `expected an EnvironmentError, got ${String(caught)}`);
  assert.equal(caught.phase, 'env');
  assert.equal(caught.exitCode, 1);
  for (const fragment of fragments) {
    assert.ok(caught.message.includes(fragment), `message ${JSON.stringify(caught.message)} should include ${JSON.stringify(fragment)}`);
  }
  return caught;
}

const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

describe('env/providers', () => {
  describe('slurm', () => {
    // What srun sets in a step of `sbatch -N 3 -n 5` (block), seen from rank 3.
    const stepEnv: Env = {
      SLURM_JOB_ID: '4242',
      SLURM_JOBID: '4242',
      SLURM_JOB_NODELIST: 'nid[00001-00004]',
      SLURM_NTASKS: '8',
      SLURM_TASKS_PER_NODE: '2(x4)',
      SLURM_STEP_NODELIST: 'nid[00001-00003]',
      SLURM_STEP_NUM_TASKS: '5',
      SLURM_STEP_TASKS_PER_NODE: '2(x2),1',
      SLURM_PROCID: '3',
      SLURM_LOCALID: '1',
      SLURM_NODEID: '1',
    };
    const stepHosts = ['nid00001', 'nid00002', 'nid00003'];

    it('reads a step started by srun, with block placement from the step variables', () => {
      assert.deepStrictEqual(slurmProvider.read(stepEnv, untouchableIo), {
        scheduler: 'slurm',
        launcher: 'srun',
        jobId: '4242',
        rank: 3,
        size: 5,
        localRank: 1,
        localSize: 2,
        nodeIndex: 1,
        hosts: stepHosts,
        rankHosts: ['nid00001', 'nid00001', 'nid00002', 'nid00002', 'nid00003'],
        coordinator: 'nid00001',
      } satisfies JobEnv);
    });

    it('places ranks round-robin under SLURM_DISTRIBUTION=cyclic', () => {
      const env = { ...stepEnv, SLURM_DISTRIBUTION: 'cyclic', SLURM_PROCID: '3', SLURM_LOCALID: '1', SLURM_NODEID: '0' };
      assert.deepStrictEqual(slurmProvider.read(env, untouchableIo), {
        scheduler: 'slurm',
        launcher: 'srun',
        jobId: '4242',
        rank: 3,
        size: 5,
        localRank: 1,
        localSize: 2,
        nodeIndex: 0,
        hosts: stepHosts,
        rankHosts: ['nid00001', 'nid00002', 'nid00003', 'nid00001', 'nid00002'],
        coordinator: 'nid00001',
      } satisfies JobEnv);
    });

    it('takes the node distribution from the first part of SLURM_DISTRIBUTION', () => {
      const rankHosts = (distribution: string): string[] => slurmProvider.read({ ...stepEnv, SLURM_DISTRIBUTION: distribution }, untouchableIo).rankHosts;
      assert.deepStrictEqual(rankHosts('cyclic:block'), ['nid00001', 'nid00002', 'nid00003', 'nid00001', 'nid00002']);
      assert.deepStrictEqual(rankHosts('block:cyclic'), ['nid00001', 'nid00001', 'nid00002', 'nid00002', 'nid00003']);
      assert.deepStrictEqual(rankHosts('block'), ['nid00001', 'nid00001', 'nid00002', 'nid00002', 'nid00003']);
    });

    it('finds the node of the rank from the placement when SLURM_NODEID and SLURM_LOCALID are absent', () => {
      const { SLURM_NODEID: _n, SLURM_LOCALID: _l, ...env } = stepEnv;
      const job = slurmProvider.read({ ...env, SLURM_PROCID: '4' }, untouchableIo);
      assert.deepStrictEqual([job.rank, job.nodeIndex, job.localRank], [4, 2, 0]);
    });

    it('falls back to SLURM_JOBID, SLURM_NTASKS, SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE', () => {
      const env: Env = {
        SLURM_JOBID: '77',
        SLURM_PROCID: '1',
        SLURM_NTASKS: '4',
        SLURM_JOB_NODELIST: 'node[1-2]',
        SLURM_TASKS_PER_NODE: '2(x2)',
        SLURM_LOCALID: '1',
        SLURM_NODEID: '0',
      };
      assert.deepStrictEqual(slurmProvider.read(env, untouchableIo), {
        scheduler: 'slurm',
        launcher: 'srun',
        jobId: '77',
        rank: 1,
        size: 4,
        localRank: 1,
        localSize: 2,
        nodeIndex: 0,
        hosts: ['node1', 'node2'],
        rankHosts: ['node1', 'node1', 'node2', 'node2'],
        coordinator: 'node1',
      } satisfies JobEnv);
    });

    it('spreads ranks evenly over the nodes when no tasks-per-node variable is set', () => {
      const env: Env = { SLURM_JOB_ID: '9', SLURM_PROCID: '2', SLURM_NTASKS: '3', SLURM_JOB_NODELIST: 'node[1-2]' };
      assert.deepStrictEqual(slurmProvider.read(env, untouchableIo), {
        scheduler: 'slurm',
        launcher: 'srun',
        jobId: '9',
        rank: 2,
        size: 3,
        localRank: 0,
        localSize: 1,
        nodeIndex: 1,
        hosts: ['node1', 'node2'],
        rankHosts: ['node1', 'node1', 'node2'],
        coordinator: 'node1',
      } satisfies JobEnv);
    });

    it('takes rank, size and local rank from Open MPI when mpirun runs inside the allocation', () => {
      // The Slurm variables are those of the orted that mpirun started with srun, one per node.
      const env: Env = {
        SLURM_JOB_ID: '500',
        SLURM_JOB_NODELIST: 'node[1-2]',
        SLURM_TASKS_PER_NODE: '2(x2)',
        SLURM_NTASKS: '2',
        SLURM_PROCID: '1',
        SLURM_LOCALID: '0',
        SLURM_NODEID: '1',
        OMPI_COMM_WORLD_RANK: '3',
        OMPI_COMM_WORLD_SIZE: '4',
        OMPI_COMM_WORLD_LOCAL_RANK: '1',
      };
      assert.deepStrictEqual(slurmProvider.read(env, untouchableIo), {
        scheduler: 'slurm',
        launcher: 'mpirun',
        jobId: '500',
        rank: 3,
        size: 4,
        localRank: 1,
        localSize: 2,
        nodeIndex: 1,
        hosts: ['node1', 'node2'],
        rankHosts: ['node1', 'node1', 'node2', 'node2'],
        coordinator: 'node1',
      } satisfies JobEnv);
    });

    it('takes rank, size and local rank from PMI under MPICH mpiexec inside the allocation', () => {
      const env: Env = {
        SLURM_JOB_ID: '501',
        SLURM_JOB_NODELIST: 'node[1-2]',
        SLURM_TASKS_PER_NODE: '2(x2)',
        SLURM_NODEID: '0',
        PMI_RANK: '1',
        PMI_SIZE: '4',
        MPI_LOCALRANKID: '1',
      };
      const job = slurmProvider.read(env, untouchableIo);
      assert.deepStrictEqual([job.launcher, job.rank, job.size, job.localRank, job.nodeIndex], ['pmi', 1, 4, 1, 0]);
    });

    it('reads two ranks per node under cyclic placement: local rank from SLURM_LOCALID, local size from the step\'s tasks per node', () => {
      // What srun --ntasks-per-node=2 --distribution=cyclic sets on 2 nodes, seen from each rank.
      const env = (rank: number, node: number, local: number): Env => ({
        SLURM_JOB_ID: '61', SLURM_STEP_NODELIST: 'node[1-2]', SLURM_STEP_NUM_TASKS: '4', SLURM_STEP_TASKS_PER_NODE: '2(x2)',
        SLURM_DISTRIBUTION: 'cyclic', SLURM_PROCID: String(rank), SLURM_NODEID: String(node), SLURM_LOCALID: String(local),
      });
      const seen = [env(0, 0, 0), env(1, 1, 0), env(2, 0, 1), env(3, 1, 1)].map((e) => slurmProvider.read(e, untouchableIo));
      assert.deepStrictEqual(seen.map((job) => [job.rank, job.nodeIndex, job.localRank, job.localSize]), [[0, 0, 0, 2], [1, 1, 0, 2], [2, 0, 1, 2], [3, 1, 1, 2]]);
      assert.deepStrictEqual(seen[3]!.rankHosts, ['node1', 'node2', 'node1', 'node2']);
    });

    it('takes the local size from the step\'s tasks on this node when the nodes differ (2(x2),1)', () => {
      const localSize = (rank: number, node: number): number =>
        slurmProvider.read({ ...stepEnv, SLURM_PROCID: String(rank), SLURM_NODEID: String(node), SLURM_LOCALID: '0' }, untouchableIo).localSize;
      assert.deepStrictEqual([localSize(0, 0), localSize(2, 1), localSize(4, 2)], [2, 2, 1]);
    });

    it('takes the local size from Open MPI (OMPI_COMM_WORLD_LOCAL_SIZE) under mpirun inside the allocation', () => {
      const env: Env = {
        SLURM_JOB_ID: '500', SLURM_JOB_NODELIST: 'node[1-2]', SLURM_TASKS_PER_NODE: '1(x2)', SLURM_NODEID: '1',
        OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '8', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '4',
      };
      const job = slurmProvider.read(env, untouchableIo);
      assert.deepStrictEqual([job.rank, job.localRank, job.localSize], [5, 1, 4]);
    });

    it('says "Not running inside a Slurm step?" when SLURM_PROCID is missing (a batch script without srun)', () => {
      const error = envError(
        () => slurmProvider.read({ SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'node[1-3]' }, untouchableIo),
        'SLURM_PROCID',
        'Not running inside a Slurm step?',
      );
      assert.match(error.message, /^SLURM_PROCID not found in environment\./);
    });

    it('quotes a malformed SLURM_PROCID', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_PROCID: 'abc' }, untouchableIo), 'SLURM_PROCID="abc"', 'not an integer');
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_PROCID: '-1' }, untouchableIo), 'SLURM_PROCID="-1"');
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_PROCID: '1.5' }, untouchableIo), 'SLURM_PROCID="1.5"');
    });

    it('refuses a rank that is not below the step size', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_PROCID: '5' }, untouchableIo), 'SLURM_PROCID=5', 'SLURM_STEP_NUM_TASKS=5');
    });

    it('refuses a step size of zero', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '0' }, untouchableIo), 'SLURM_STEP_NUM_TASKS="0"', '>= 1');
    });

    it('names the nodelist variable that is not a hostlist', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_STEP_NODELIST: 'nid[00001-' }, untouchableIo), 'SLURM_STEP_NODELIST="nid[00001-"', 'not a Slurm hostlist');
      const { SLURM_STEP_NODELIST: _s, ...jobOnly } = stepEnv;
      envError(() => slurmProvider.read({ ...jobOnly, SLURM_JOB_NODELIST: 'nid[3-1]' }, untouchableIo), 'SLURM_JOB_NODELIST="nid[3-1]"');
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_STEP_NODELIST: ' , ' }, untouchableIo), 'SLURM_STEP_NODELIST', 'no hosts');
    });

    it('refuses tasks per node that do not match the node count', () => {
      envError(
        () => slurmProvider.read({ ...stepEnv, SLURM_STEP_TASKS_PER_NODE: '2(x2)' }, untouchableIo),
        'SLURM_STEP_TASKS_PER_NODE="2(x2)"',
        'lists 2 nodes but SLURM_STEP_NODELIST has 3',
      );
    });

    it('names a malformed tasks-per-node variable', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_STEP_TASKS_PER_NODE: '2(x' }, untouchableIo), 'SLURM_STEP_TASKS_PER_NODE="2(x"');
    });

    it('refuses a SLURM_NODEID past the node list', () => {
      envError(() => slurmProvider.read({ ...stepEnv, SLURM_NODEID: '3' }, untouchableIo), 'SLURM_NODEID=3', 'SLURM_STEP_NODELIST');
    });
  });

  describe('pbs', () => {
    const nodefile = '/var/spool/pbs/aux/123.pbs01';
    // Four slots per node, as `select=3:ncpus=4` writes them.
    const slots = [...times(4, 'cn01'), ...times(4, 'cn02'), ...times(4, 'cn03')];
    const io = fakeIo({ [nodefile]: slots.join('\n') + '\n' }, 'cn02');
    const base: Env = { PBS_JOBID: '123.pbs01', PBS_NODEFILE: nodefile };
    const hosts = ['cn01', 'cn02', 'cn03'];

    it('reads aprun (ALPS_APP_PE): one process per node, size = number of nodes', () => {
      assert.deepStrictEqual(pbsProvider.read({ ...base, ALPS_APP_PE: '2' }, io), {
        scheduler: 'pbs',
        launcher: 'aprun',
        jobId: '123.pbs01',
        rank: 2,
        size: 3,
        localRank: 0,
        localSize: 1,
        nodeIndex: 2,
        hosts,
        rankHosts: hosts,
        coordinator: 'cn01',
      } satisfies JobEnv);
    });

    it('reads aprun with HPCTRAIN_NPROCS: ranks fill the slots in nodefile order', () => {
      assert.deepStrictEqual(pbsProvider.read({ ...base, ALPS_APP_PE: '5', HPCTRAIN_NPROCS: '12' }, io), {
        scheduler: 'pbs',
        launcher: 'aprun',
        jobId: '123.pbs01',
        rank: 5,
        size: 12,
        localRank: 1,
        localSize: 4,
        nodeIndex: 1,
        hosts,
        rankHosts: slots,
        coordinator: 'cn01',
      } satisfies JobEnv);
    });

    it('reads Open MPI mpirun (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK)', () => {
      const env = { ...base, OMPI_COMM_WORLD_RANK: '6', OMPI_COMM_WORLD_SIZE: '12', OMPI_COMM_WORLD_LOCAL_RANK: '2' };
      assert.deepStrictEqual(pbsProvider.read(env, io), {
        scheduler: 'pbs',
        launcher: 'mpirun',
        jobId: '123.pbs01',
        rank: 6,
        size: 12,
        localRank: 2,
        localSize: 4,
        nodeIndex: 1,
        hosts,
        rankHosts: slots,
        coordinator: 'cn01',
      } satisfies JobEnv);
    });

    it('places HPCTRAIN_TASKS_PER_NODE ranks on each node under aprun: local rank = ALPS_APP_PE mod N', () => {
      // pbs/train.pbs with HPCTRAIN_TASKS_PER_NODE=2 on 3 nodes: aprun -n 6 -N 2, HPCTRAIN_NPROCS=6.
      const env: Env = { ...base, ALPS_APP_PE: '3', HPCTRAIN_NPROCS: '6', HPCTRAIN_TASKS_PER_NODE: '2' };
      assert.deepStrictEqual(pbsProvider.read(env, io), {
        scheduler: 'pbs',
        launcher: 'aprun',
        jobId: '123.pbs01',
        rank: 3,
        size: 6,
        localRank: 1,
        localSize: 2,
        nodeIndex: 1,
        hosts,
        rankHosts: ['cn01', 'cn01', 'cn02', 'cn02', 'cn03', 'cn03'],
        coordinator: 'cn01',
      } satisfies JobEnv);
      const { HPCTRAIN_NPROCS: _p, ...withoutSize } = env;
      assert.equal(pbsProvider.read(withoutSize, io).size, 6, 'the size is nodes x HPCTRAIN_TASKS_PER_NODE when aprun does not say');
      const locals = [0, 1, 2, 3, 4, 5].map((pe) => pbsProvider.read({ ...env, ALPS_APP_PE: String(pe) }, io).localRank);
      assert.deepStrictEqual(locals, [0, 1, 0, 1, 0, 1]);
    });

    it('keeps Open MPI\'s own local rank and size with HPCTRAIN_TASKS_PER_NODE (mpirun, 2 slots per node)', () => {
      const env: Env = {
        ...base, HPCTRAIN_TASKS_PER_NODE: '2', OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '6', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2',
      };
      const job = pbsProvider.read(env, io);
      assert.deepStrictEqual([job.localRank, job.localSize, job.nodeIndex, job.rankHosts[5]], [1, 2, 2, 'cn03']);
    });

    it('takes the PMI local size from MPI_LOCALNRANKS or PMI_LOCAL_SIZE', () => {
      const localSize = (extra: Env): number => pbsProvider.read({ ...base, PMI_RANK: '4', PMI_SIZE: '6', ...extra }, io).localSize;
      assert.equal(localSize({}), 2); // ranks 0-3 fill the slots of cn01, 4 and 5 those of cn02
      assert.equal(localSize({ MPI_LOCALNRANKS: '3' }), 3);
      assert.equal(localSize({ PMI_LOCAL_SIZE: '4' }), 4);
    });

    it('refuses more ranks than HPCTRAIN_TASKS_PER_NODE on every node, and a malformed value', () => {
      const error = envError(() => pbsProvider.read({ ...base, HPCTRAIN_TASKS_PER_NODE: '2', OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '7' }, io),
        'started 7 ranks', 'HPCTRAIN_TASKS_PER_NODE=2', '3 node(s)');
      assert.match(error.hint ?? '', /pbs\/train\.pbs/);
      envError(() => pbsProvider.read({ ...base, HPCTRAIN_TASKS_PER_NODE: '0', ALPS_APP_PE: '0' }, io), 'HPCTRAIN_TASKS_PER_NODE="0" is not an integer >= 1');
    });

    it('counts the local rank from the placement when the launcher does not give it', () => {
      const job = pbsProvider.read({ ...base, OMPI_COMM_WORLD_RANK: '7', OMPI_COMM_WORLD_SIZE: '12' }, io);
      assert.deepStrictEqual([job.rank, job.localRank, job.nodeIndex], [7, 3, 1]);
    });

    it('reads MPICH or Cray PMI (PMI_RANK/PMI_SIZE)', () => {
      assert.deepStrictEqual(pbsProvider.read({ ...base, PMI_RANK: '1', PMI_SIZE: '3' }, io), {
        scheduler: 'pbs',
        launcher: 'pmi',
        jobId: '123.pbs01',
        rank: 1,
        size: 3,
        localRank: 0,
        localSize: 1,
        nodeIndex: 1,
        hosts,
        rankHosts: hosts,
        coordinator: 'cn01',
      } satisfies JobEnv);
    });

    it('takes the PMI local rank from MPI_LOCALRANKID or PMI_LOCAL_RANK', () => {
      const localRank = (extra: Env): number => pbsProvider.read({ ...base, PMI_RANK: '4', PMI_SIZE: '6', ...extra }, io).localRank;
      assert.equal(localRank({}), 0); // rank 4 is the first slot of cn02
      assert.equal(localRank({ MPI_LOCALRANKID: '1' }), 1);
      assert.equal(localRank({ PMI_LOCAL_RANK: '2' }), 2);
      assert.equal(localRank({ MPI_LOCALRANKID: '1', PMI_LOCAL_RANK: '2' }), 1);
    });

    it('ignores blank lines, comments and CRLF in the nodefile', () => {
      const crlf = fakeIo({ [nodefile]: 'cn01\r\ncn01\r\n\r\n# head node below\r\n  cn02  \r\n' });
      const job = pbsProvider.read({ ...base, ALPS_APP_PE: '1' }, crlf);
      assert.deepStrictEqual([job.hosts, job.rankHosts, job.nodeIndex], [['cn01', 'cn02'], ['cn01', 'cn02'], 1]);
    });

    it('asks for aprun or mpirun when no launcher gave a rank', () => {
      const error = envError(() => pbsProvider.read(base, io), 'PBS job 123.pbs01', 'ALPS_APP_PE', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK');
      assert.match(error.hint ?? '', /aprun/);
      assert.match(error.hint ?? '', /mpirun/);
    });

    it('names PBS_NODEFILE when it cannot be read', () => {
      envError(() => pbsProvider.read({ ...base, ALPS_APP_PE: '0' }, fakeIo({})), `PBS_NODEFILE=${nodefile} cannot be read`, 'ENOENT');
    });

    it('names PBS_NODEFILE when it is missing', () => {
      envError(() => pbsProvider.read({ PBS_JOBID: '123.pbs01', ALPS_APP_PE: '0' }, io), 'PBS_NODEFILE not found in environment');
    });

    it('refuses an empty nodefile', () => {
      envError(() => pbsProvider.read({ ...base, ALPS_APP_PE: '0' }, fakeIo({ [nodefile]: '' })), `PBS_NODEFILE=${nodefile} lists no nodes`);
      envError(() => pbsProvider.read({ ...base, ALPS_APP_PE: '0' }, fakeIo({ [nodefile]: '\n  \n# nothing\n' })), 'lists no nodes');
    });

    it('refuses an aprun rank that is not below the node count', () => {
      envError(() => pbsProvider.read({ ...base, ALPS_APP_PE: '3' }, io), 'rank 3 from aprun', 'job size 3');
    });

    it('quotes a malformed launcher rank', () => {
      envError(() => pbsProvider.read({ ...base, ALPS_APP_PE: 'x' }, io), 'ALPS_APP_PE="x"');
      envError(() => pbsProvider.read({ ...base, OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: 'many' }, io), 'OMPI_COMM_WORLD_SIZE="many"');
    });
  });

  describe('mpi', () => {
    it('uses this host as the coordinator when every rank is local (OMPI_COMM_WORLD_LOCAL_SIZE == SIZE)', () => {
      const env: Env = {
        OMPI_COMM_WORLD_RANK: '1',
        OMPI_COMM_WORLD_SIZE: '4',
        OMPI_COMM_WORLD_LOCAL_RANK: '1',
        OMPI_COMM_WORLD_LOCAL_SIZE: '4',
      };
      assert.deepStrictEqual(mpiProvider.read(env, fakeIo({}, 'ws1')), {
        scheduler: 'mpi',
        launcher: 'mpirun',
        jobId: 'mpi',
        rank: 1,
        size: 4,
        localRank: 1,
        localSize: 4,
        nodeIndex: 0,
        hosts: ['ws1'],
        rankHosts: times(4, 'ws1'),
        coordinator: 'ws1',
      } satisfies JobEnv);
    });

    it('takes the job id from HPCTRAIN_JOB_ID, then from the launcher', () => {
      const env: Env = { OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '1', OMPI_MCA_ess_base_jobid: '31337' };
      assert.equal(mpiProvider.read(env, fakeIo()).jobId, '31337');
      assert.equal(mpiProvider.read({ ...env, HPCTRAIN_JOB_ID: 'mine' }, fakeIo()).jobId, 'mine');
    });

    it('asks for HPCTRAIN_COORDINATOR when the ranks span several hosts', () => {
      const env: Env = { OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '2' };
      const error = envError(() => mpiProvider.read(env, fakeIo()), 'HPCTRAIN_COORDINATOR not found in environment');
      assert.match(error.hint ?? '', /export HPCTRAIN_COORDINATOR=/);
      // Without any local size, nothing says the ranks share a host either.
      const { OMPI_COMM_WORLD_LOCAL_SIZE: _l, ...noLocalSize } = env;
      envError(() => mpiProvider.read(noLocalSize, fakeIo()), 'HPCTRAIN_COORDINATOR');
    });

    it('uses HPCTRAIN_COORDINATOR when the ranks span several hosts', () => {
      const env: Env = {
        OMPI_COMM_WORLD_RANK: '2',
        OMPI_COMM_WORLD_SIZE: '4',
        OMPI_COMM_WORLD_LOCAL_RANK: '0',
        OMPI_COMM_WORLD_LOCAL_SIZE: '2',
        HPCTRAIN_COORDINATOR: 'node1',
      };
      const job = mpiProvider.read(env, fakeIo({}, 'node2'));
      // Only rank 0's host is known; the rest of rankHosts and hosts are placeholders.
      const { nodeIndex: _n, hosts: _h, rankHosts, ...known } = job;
      assert.deepStrictEqual(known, { scheduler: 'mpi', launcher: 'mpirun', jobId: 'mpi', rank: 2, size: 4, localRank: 0, localSize: 2, coordinator: 'node1' });
      assert.equal(rankHosts.length, 4);
      assert.equal(rankHosts[0], 'node1');
    });

    it('reads MPICH/Hydra PMI variables (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS)', () => {
      const env: Env = { PMI_RANK: '1', PMI_SIZE: '2', MPI_LOCALRANKID: '1', MPI_LOCALNRANKS: '2', PMI_JOBID: 'kvs_123_0' };
      assert.deepStrictEqual(mpiProvider.read(env, fakeIo({}, 'ws2')), {
        scheduler: 'mpi',
        launcher: 'pmi',
        jobId: 'kvs_123_0',
        rank: 1,
        size: 2,
        localRank: 1,
        localSize: 2,
        nodeIndex: 0,
        hosts: ['ws2'],
        rankHosts: ['ws2', 'ws2'],
        coordinator: 'ws2',
      } satisfies JobEnv);
    });

    it('needs HPCTRAIN_COORDINATOR under PMI across hosts too', () => {
      const env: Env = { PMI_RANK: '3', PMI_SIZE: '4', MPI_LOCALNRANKS: '2' };
      envError(() => mpiProvider.read(env, fakeIo()), 'HPCTRAIN_COORDINATOR');
      assert.equal(mpiProvider.read({ ...env, HPCTRAIN_COORDINATOR: 'head' }, fakeIo()).coordinator, 'head');
    });

    it('names a missing or inconsistent launcher variable', () => {
      envError(() => mpiProvider.read({ OMPI_COMM_WORLD_RANK: '0' }, fakeIo()), 'OMPI_COMM_WORLD_SIZE not found in environment');
      envError(() => mpiProvider.read({ PMI_RANK: '0' }, fakeIo()), 'PMI_SIZE not found in environment');
      envError(
        () => mpiProvider.read({ OMPI_COMM_WORLD_RANK: '4', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_SIZE: '4' }, fakeIo()),
        'OMPI_COMM_WORLD_RANK=4',
        'OMPI_COMM_WORLD_SIZE=4',
      );
    });
  });

  describe('local', () => {
    it('reads the ranks `hpctrain launch` starts (HPCTRAIN_RANK/SIZE/JOB_ID)', () => {
      const env: Env = { HPCTRAIN_RANK: '1', HPCTRAIN_SIZE: '3', HPCTRAIN_JOB_ID: 'launch-abc' };
      assert.deepStrictEqual(localProvider.read(env, fakeIo({}, 'ws1')), {
        scheduler: 'local',
        launcher: 'hpctrain-launch',
        jobId: 'launch-abc',
        rank: 1,
        size: 3,
        localRank: 1,
        localSize: 3,
        nodeIndex: 0,
        hosts: ['ws1'],
        rankHosts: ['ws1', 'ws1', 'ws1'],
        coordinator: '127.0.0.1',
      } satisfies JobEnv);
    });

    it('honours HPCTRAIN_LOCAL_RANK and HPCTRAIN_COORDINATOR', () => {
      const env: Env = { HPCTRAIN_RANK: '2', HPCTRAIN_SIZE: '3', HPCTRAIN_LOCAL_RANK: '0', HPCTRAIN_COORDINATOR: '10.0.0.1' };
      const job = localProvider.read(env, fakeIo());
      assert.deepStrictEqual([job.localRank, job.coordinator], [0, '10.0.0.1']);
    });

    it('is a job of one process when no variable is set', () => {
      assert.deepStrictEqual(localProvider.read({}, fakeIo({}, 'ws1')), {
        scheduler: 'local',
        launcher: 'none',
        jobId: `local-${process.pid}`,
        rank: 0,
        size: 1,
        localRank: 0,
        localSize: 1,
        nodeIndex: 0,
        hosts: ['ws1'],
        rankHosts: ['ws1'],
        coordinator: '127.0.0.1',
      } satisfies JobEnv);
    });

    it('names a missing or inconsistent HPCTRAIN variable', () => {
      envError(() => localProvider.read({ HPCTRAIN_RANK: '0' }, fakeIo()), 'HPCTRAIN_SIZE not found in environment');
      envError(() => localProvider.read({ HPCTRAIN_RANK: '3', HPCTRAIN_SIZE: '3' }, fakeIo()), 'HPCTRAIN_RANK=3', 'HPCTRAIN_SIZE=3');
      envError(() => localProvider.read({ HPCTRAIN_RANK: 'one', HPCTRAIN_SIZE: '3' }, fakeIo()), 'HPCTRAIN_RANK="one"');
    });
  });

  describe('detectEnv', () => {
    const nodefile = '/pbs/nodefile';
    const io = fakeIo({ [nodefile]: 'cn01\ncn02\n' }, 'ws1');
    const slurm: Env = { SLURM_JOB_ID: '10', SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_NODELIST: 'node[1-2]', SLURM_TASKS_PER_NODE: '1(x2)' };
    const pbs: Env = { PBS_JOBID: '20.pbs', PBS_NODEFILE: nodefile };
    const ompi: Env = { OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_SIZE: '2' };
    const launched: Env = { HPCTRAIN_RANK: '1', HPCTRAIN_SIZE: '2', HPCTRAIN_JOB_ID: 'launch-1' };
    const picked = (env: Env): [string, string, string] => {
      const job = detectEnv(env, 'auto', io);
      return [job.scheduler, job.launcher, job.jobId];
    };

    it('tries local, slurm, pbs, then mpi', () => {
      assert.deepStrictEqual(PROVIDERS.map((p) => p.name), ['local', 'slurm', 'pbs', 'mpi']);
      assert.deepStrictEqual([...SCHEDULER_CHOICES], ['auto', 'local', 'slurm', 'pbs', 'mpi']);
    });

    it('lets HPCTRAIN_RANK (hpctrain launch) win over the SLURM_* variables it runs inside', () => {
      assert.deepStrictEqual(picked({ ...slurm, ...launched }), ['local', 'hpctrain-launch', 'launch-1']);
    });

    it('lets Slurm win over Open MPI, keeping mpirun as the launcher', () => {
      assert.deepStrictEqual(picked({ ...slurm, ...ompi }), ['slurm', 'mpirun', '10']);
    });

    it('lets PBS win over Open MPI, keeping mpirun as the launcher', () => {
      assert.deepStrictEqual(picked({ ...pbs, ...ompi }), ['pbs', 'mpirun', '20.pbs']);
    });

    it('lets Slurm win over PBS (PBS wrappers on a Slurm cluster)', () => {
      assert.deepStrictEqual(picked({ ...pbs, ...slurm }), ['slurm', 'srun', '10']);
    });

    it('picks plain MPI, and falls back to one local process', () => {
      assert.deepStrictEqual(picked(ompi), ['mpi', 'mpirun', 'mpi']);
      assert.deepStrictEqual(picked({ PMI_RANK: '0', PMI_SIZE: '1', MPI_LOCALNRANKS: '1' }), ['mpi', 'pmi', 'mpi']);
      assert.deepStrictEqual(picked({ HOME: '/home/u', PATH: '/usr/bin' }), ['local', 'none', `local-${process.pid}`]);
    });

    it('reads the forced --scheduler even when another provider would match', () => {
      assert.equal(detectEnv({ ...slurm, ...ompi }, 'mpi', io).scheduler, 'mpi');
      assert.deepStrictEqual(detectEnv({ ...slurm }, 'local', io).launcher, 'none');
    });

    it('names SLURM_JOB_ID when --scheduler slurm is forced outside Slurm', () => {
      const error = envError(() => detectEnv({}, 'slurm', io));
      assert.match(error.message, /SLURM_JOB_?ID not found in environment/);
    });

    it('names the missing variable, not a TypeError, when another scheduler is forced', () => {
      envError(() => detectEnv({}, 'pbs', io), 'PBS_JOBID not found in environment');
      envError(() => detectEnv({}, 'mpi', io), 'OMPI_COMM_WORLD_RANK or PMI_RANK not found in environment');
    });

    it('refuses an unknown scheduler name with an OptionsError', () => {
      assert.throws(
        () => detectEnv(slurm, 'lsf' as SchedulerName, io),
        (error: unknown) => {
          assert.ok(error instanceof OptionsError && error instanceof HpcTrainError, `expected OptionsError, got ${String(error)}`);
          assert.equal(error.exitCode, 2);
          assert.equal(error.phase, 'options');
          assert.match(error.message, /--scheduler "lsf" is not one of auto, local, slurm, pbs, mpi/);
          return true;
        },
      );
    });
  });

  describe('detect (marker variables)', () => {
    const cases: Array<[string, (env: Env) => boolean, Env, boolean]> = [
      ['slurm by SLURM_JOB_ID', slurmProvider.detect, { SLURM_JOB_ID: '1' }, true],
      ['slurm by SLURM_JOBID', slurmProvider.detect, { SLURM_JOBID: '1' }, true],
      ['slurm not by SLURM_CONF', slurmProvider.detect, { SLURM_CONF: '/etc/slurm/slurm.conf' }, false],
      ['pbs by PBS_JOBID', pbsProvider.detect, { PBS_JOBID: '1.pbs' }, true],
      ['pbs not by PBS_NODEFILE alone', pbsProvider.detect, { PBS_NODEFILE: '/x' }, false],
      ['mpi by OMPI_COMM_WORLD_RANK', mpiProvider.detect, { OMPI_COMM_WORLD_RANK: '0' }, true],
      ['mpi by PMI_RANK', mpiProvider.detect, { PMI_RANK: '0' }, true],
      ['mpi not by ALPS_APP_PE', mpiProvider.detect, { ALPS_APP_PE: '0' }, false],
      ['local by HPCTRAIN_RANK', localProvider.detect, { HPCTRAIN_RANK: '0' }, true],
      ['local not by HPCTRAIN_SIZE alone', localProvider.detect, { HPCTRAIN_SIZE: '2' }, false],
    ];
    for (const [title, detect, env, expected] of cases) {
      it(`detects ${title}: ${expected}`, () => {
        assert.equal(detect(env), expected);
      });
    }
  });
});
