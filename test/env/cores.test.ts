// The cores a rank may use and how they are split, from literal facts of each kind of node.
import assert from 'node:assert/strict';
import { coresForRank, parseCgroupQuota, planThreads, type CoreFacts } from '../../src/env/cores.js';

const NODE: CoreFacts = { nodeCpus: 64, affinity: 64, cgroupQuota: undefined, slurmCpusPerTask: undefined };

describe('cores per rank', () => {
  it('a rank alone on an unbound node has every core', () => {
    assert.deepEqual(coresForRank(NODE, 1), { cores: 64, source: "CPU affinity 64 of the node's 64" });
  });

  it('ranks that share an unbound node share its cores (hpctrain launch, mpirun without binding)', () => {
    assert.equal(coresForRank(NODE, 4).cores, 16);
    assert.match(coresForRank(NODE, 4).source, /shared by 4 ranks on the node/);
    assert.equal(coresForRank({ ...NODE, nodeCpus: 2, affinity: 2 }, 3).cores, 1, 'at least one core');
  });

  it('a rank bound by srun or mpirun (an affinity mask smaller than the node) keeps its mask, whatever else runs on the node', () => {
    assert.equal(coresForRank({ ...NODE, affinity: 16 }, 4).cores, 16);
  });

  it('SLURM_CPUS_PER_TASK and a cgroup quota limit the rank, the smaller winning', () => {
    assert.deepEqual(coresForRank({ ...NODE, slurmCpusPerTask: 8 }, 4), { cores: 8, source: 'SLURM_CPUS_PER_TASK=8' });
    assert.deepEqual(coresForRank({ ...NODE, cgroupQuota: 6.5, slurmCpusPerTask: 8 }, 1), { cores: 6, source: 'cgroup CPU quota 6.5' });
  });

  it('reads cgroup v2 cpu.max and v1 quota/period, "max" and -1 meaning no quota', () => {
    assert.equal(parseCgroupQuota('max 100000\n'), undefined);
    assert.equal(parseCgroupQuota('400000 100000\n'), 4);
    assert.equal(parseCgroupQuota(undefined, '-1\n', '100000\n'), undefined);
    assert.equal(parseCgroupQuota(undefined, '150000\n', '100000\n'), 1.5);
    assert.equal(parseCgroupQuota(undefined, undefined, undefined), undefined);
  });
});

describe('compute and decode threads', () => {
  it('synthetic data: every core computes, none decodes', () => {
    assert.deepEqual(planThreads(2, false), { computeThreads: 2, decodeThreads: 0 });
  });

  it('image files: decode threads share a small node\'s cores, and have cores of their own from 8 on', () => {
    assert.deepEqual(planThreads(2, true), { computeThreads: 2, decodeThreads: 1 });
    assert.deepEqual(planThreads(64, true), { computeThreads: 56, decodeThreads: 8 });
  });

  it('flags override either', () => {
    assert.deepEqual(planThreads(64, true, { computeThreads: 4 }), { computeThreads: 4, decodeThreads: 8 });
    assert.deepEqual(planThreads(64, true, { decodeThreads: 2 }), { computeThreads: 62, decodeThreads: 2 });
  });
});
