// The real batch scripts on the real local Slurm cluster (3 slurmd "nodes" on this machine), the
// PBS script's mpirun path with a real PBS_NODEFILE and Open MPI, and its aprun path through the
// aprun test double (Cray ALPS cannot be installed here).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { parseRankLines, parseSpecDocument } from '../helpers/cli.js';
import { REPO, requireSlurmCluster, waitForJob } from '../helpers/slurm.js';

/** Every rank printed one line, all with the digest of the spec rank 0 printed and wrote. */
function checkAgreement(output: string, size: number, runDir: string, expect: { scheduler: string; launcher: string; addresses: string[] }) {
  const lines = parseRankLines(output);
  assert.deepEqual(lines.map((l) => l.rank).sort(), Array.from({ length: size }, (_, r) => r), output);
  for (const line of lines) {
    assert.equal(line.size, size);
    assert.equal(line.fields.scheduler, expect.scheduler);
    assert.equal(line.fields.launcher, expect.launcher);
    assert.equal(line.fields.address, expect.addresses[line.rank]);
  }
  assert.equal(new Set(lines.map((l) => l.fields.spec_sha256)).size, 1, 'ranks disagree on the spec');
  const printed = parseSpecDocument(output);
  const written = JSON.parse(readFileSync(join(runDir, 'cluster.json'), 'utf8'));
  assert.deepEqual(written, printed);
  assert.deepEqual(printed.table.map((m) => m.rank), Array.from({ length: size }, (_, r) => r));
  return printed;
}

describe('batch scripts on the local Slurm cluster', function () {
  this.timeout(180_000);
  let work: string;
  before(async function () {
    await requireSlurmCluster(this);
  });
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'hpctrain-it-'));
  });

  // Each strategy on 2 and 3 nodes: with ps, the first node serves and the others work.
  for (const [nodes, strategy] of [[3, 'allreduce'], [2, 'allreduce'], [3, 'ps'], [2, 'ps']] as const) {
    it(`sbatch --wait slurm/train.slurm on ${nodes} nodes (${strategy}) trains, every worker ends with the same weights, the outputs in the run directory`, async () => {
      const servers = strategy === 'ps' ? 1 : 0;
      const workers = nodes - servers;
      const result = await execa('sbatch', ['--wait', `--nodes=${nodes}`, `--output=${work}/slurm-%j.out`,
        `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_DATA=synthetic,HPCTRAIN_IMAGE_SIZE=75,HPCTRAIN_BATCH_SIZE=2,HPCTRAIN_STEPS=2,` +
          `HPCTRAIN_NUM_CLASSES=10,HPCTRAIN_STRATEGY=${strategy},HPCTRAIN_NUM_PS=${servers}`,
        'slurm/train.slurm'], { cwd: REPO, reject: false });
      const jobId = /Submitted batch job (\d+)/.exec(result.stdout)?.[1];
      const output = jobId ? readFileSync(join(work, `slurm-${jobId}.out`), 'utf8') : '';
      assert.equal(result.exitCode, 0, `${result.stderr}\n${output}`);
      assert.match(output, new RegExp(`train\\.slurm: job \\d+ on ${nodes} node\\(s\\) \\(node\\[1-${nodes}\\]\\), train;`));
      assert.match(output, workers > 1 ? new RegExp(`batch 2 per worker x ${workers} workers`) : /batch 2, 2 steps on wasm/);
      if (servers > 0) assert.match(output, /parameter server 0: served 2 steps/);
      assert.equal(output.split('\n').filter((line) => /^step \d\/2 /.test(line)).length, 2, output);
      const digests = [...output.matchAll(/^weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[1]);
      assert.equal(digests.length, workers, output);
      assert.equal(new Set(digests).size, 1, output);
      assert.deepEqual(readStepCsv(join(work, 'run', 'metrics.csv')).map((r) => r.step), [1, 2]);
      assert.deepEqual(readdirSync(join(work, 'run', 'checkpoints')), ['ckpt-000000002.hpct']);
    });
  }

  it('sbatch --wait slurm/train.slurm with HPCTRAIN_COMMAND=rendezvous on 3 nodes: every rank agrees on the spec', async () => {
    const runDir = join(work, 'run');
    const result = await execa('sbatch', ['--wait', '--nodes=3', `--output=${work}/slurm-%j.out`,
      `--export=ALL,HPCTRAIN_RUN_DIR=${runDir},HPCTRAIN_NUM_PS=1,HPCTRAIN_COMMAND=rendezvous`, 'slurm/train.slurm'], { cwd: REPO, reject: false });
    const jobId = /Submitted batch job (\d+)/.exec(result.stdout)?.[1];
    const output = jobId ? readFileSync(join(work, `slurm-${jobId}.out`), 'utf8') : '';
    assert.equal(result.exitCode, 0, `${result.stderr}\n${output}`);
    const spec = checkAgreement(output, 3, runDir, { scheduler: 'slurm', launcher: 'srun', addresses: ['node1', 'node2', 'node3'] });
    assert.equal(spec.jobId, jobId);
    assert.equal(spec.cluster.ps.length, 1);
    assert.match(spec.cluster.ps[0]!, /^node1:\d+$/);
    assert.equal(spec.cluster.worker.length, 2);
  });

  it('sbatch --wait reports a failed job when the ranks refuse their settings', async () => {
    const result = await execa('sbatch', ['--wait', '--nodes=2', `--output=${work}/slurm-%j.out`,
      `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_NUM_PS=2,HPCTRAIN_COMMAND=rendezvous`, 'slurm/train.slurm'], { cwd: REPO, reject: false });
    assert.notEqual(result.exitCode, 0);
    const jobId = /Submitted batch job (\d+)/.exec(result.stdout)![1]!;
    assert.match(readFileSync(join(work, `slurm-${jobId}.out`), 'utf8'), /--num-ps 2 leaves no worker among 2 rank/);
  });

  it('qsub pbs/train.pbs through Slurm\'s Torque wrappers runs the srun path on 3 nodes', async () => {
    const runDir = join(work, 'run');
    const out = join(work, 'pbs.out');
    const submitted = await execa('qsub', ['-V', '-l', 'nodes=3', '-o', out, '-j', 'oe', '-v', `HPCTRAIN_RUN_DIR=${runDir},HPCTRAIN_COMMAND=rendezvous`, 'pbs/train.pbs'], { cwd: REPO });
    const jobId = submitted.stdout.trim();
    assert.match(jobId, /^\d+$/);
    const { state, exitCode } = await waitForJob(jobId);
    const output = readFileSync(out, 'utf8');
    assert.equal(`${state} ${exitCode}`, 'COMPLETED 0:0', output);
    assert.match(output, /train\.pbs: job \d+, 3 node\(s\) through srun/);
    checkAgreement(output, 3, runDir, { scheduler: 'slurm', launcher: 'srun', addresses: ['node1', 'node2', 'node3'] });
  });

  it('pbs/train.pbs\'s mpirun path with a real PBS_NODEFILE and Open MPI', async () => {
    const runDir = join(work, 'run');
    const nodefile = join(work, 'nodefile');
    // One line per slot, as PBS writes it: two slots on each of three nodes.
    writeFileSync(nodefile, 'node1\nnode1\nnode2\nnode2\nnode3\nnode3\n');
    const result = await execa('bash', ['pbs/train.pbs'], {
      cwd: REPO, reject: false, all: true, extendEnv: false,
      env: {
        PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root',
        PBS_JOBID: '4242.pbsserver', PBS_NODEFILE: nodefile, PBS_O_WORKDIR: REPO,
        HPCTRAIN_LAUNCHER: 'mpirun', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_COMMAND: 'rendezvous',
        HPCTRAIN_MPIRUN_ARGS: '--allow-run-as-root --oversubscribe',
      },
    });
    assert.equal(result.exitCode, 0, result.all);
    const spec = checkAgreement(result.stdout, 3, runDir, { scheduler: 'pbs', launcher: 'mpirun', addresses: ['node1', 'node2', 'node3'] });
    assert.equal(spec.jobId, '4242.pbsserver');
  });

  it('pbs/train.pbs\'s aprun path, through the aprun test double', async () => {
    const runDir = join(work, 'run');
    const nodefile = join(work, 'nodefile');
    writeFileSync(nodefile, 'node1\nnode2\nnode3\n');
    const result = await execa('bash', ['pbs/train.pbs'], {
      cwd: REPO, reject: false, all: true, extendEnv: false,
      env: {
        PATH: `${REPO}test/doubles:${process.env.PATH}`, HOME: process.env.HOME ?? '/root',
        PBS_JOBID: '99.sdb', PBS_NODEFILE: nodefile, PBS_O_WORKDIR: REPO, HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_COMMAND: 'rendezvous',
      },
    });
    assert.equal(result.exitCode, 0, result.all);
    assert.match(result.stdout, /3 node\(s\) through aprun/);
    checkAgreement(result.stdout, 3, runDir, { scheduler: 'pbs', launcher: 'aprun', addresses: ['node1', 'node2', 'node3'] });
  });
});
