// The real batch scripts on the real local Slurm cluster (3 slurmd "nodes" on this machine), the
// PBS script's mpirun path with a real PBS_NODEFILE and Open MPI, and its aprun path through the
// aprun test double (Cray ALPS cannot be installed here).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { parseRankLines, parseSpecDocument, type SpecDocument } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';
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

/**
 * perNode ranks on each node (by the address it advertises): local ranks 0..perNode-1, each rank
 * line saying so, and the ring passing through a node's ranks one after the other, from rank 0.
 */
function checkRanksPerNode(output: string, spec: SpecDocument, perNode: number): void {
  const nodes = new Map<string, number[]>();
  for (const member of spec.table) nodes.set(member.address, [...(nodes.get(member.address) ?? []), member.rank]);
  for (const [node, ranks] of nodes) {
    const locals = ranks.map((rank) => spec.table[rank]!.localRank).sort();
    assert.deepEqual(locals, Array.from({ length: perNode }, (_, i) => i), `local ranks on ${node}`);
  }
  for (const line of parseRankLines(output)) {
    assert.equal(line.fields.local_rank, String(spec.table[line.rank]!.localRank), output);
    assert.equal(line.fields.local_size, String(perNode), output);
  }
  assert.deepEqual([...spec.ring].sort(), spec.table.map((m) => m.rank), 'the ring holds every worker once');
  assert.equal(spec.ring[0], 0, 'the ring starts at the first worker');
  for (const [node, ranks] of nodes) {
    const places = ranks.map((rank) => spec.ring.indexOf(rank)).sort((a, b) => a - b);
    assert.equal(places.at(-1)! - places[0]!, ranks.length - 1, `the ranks of ${node} are not side by side in the ring ${spec.ring.join(',')}`);
  }
}

/** The output file of a job sbatch --wait ran, and its exit code. */
async function sbatchWait(work: string, args: string[]): Promise<{ exitCode: number | undefined; output: string; stderr: string; jobId: string | undefined }> {
  const result = await execa('sbatch', ['--wait', `--output=${work}/slurm-%j.out`, ...args, 'slurm/train.slurm'], { cwd: REPO, reject: false });
  const jobId = /Submitted batch job (\d+)/.exec(result.stdout)?.[1];
  const output = jobId ? readFileSync(join(work, `slurm-${jobId}.out`), 'utf8') : '';
  return { exitCode: result.exitCode, output, stderr: result.stderr, jobId };
}

/** pbs/train.pbs as PBS runs it here: a PBS_NODEFILE of these slots, PATH, HOME and `env`; `aprun` puts the test double first on PATH. */
function runPbsScript(work: string, slots: readonly string[], env: Record<string, string>, aprun = false) {
  const nodefile = join(work, 'nodefile');
  writeFileSync(nodefile, slots.map((slot) => `${slot}\n`).join(''));
  return execa('bash', ['pbs/train.pbs'], {
    cwd: REPO, reject: false, all: true, extendEnv: false,
    env: { PATH: aprun ? `${REPO}test/doubles:${process.env.PATH}` : process.env.PATH!, HOME: process.env.HOME ?? '/root', PBS_NODEFILE: nodefile, PBS_O_WORKDIR: REPO, ...env },
  });
}

/** Every worker printed the digest of its final weights, and all are the same. */
function checkSameWeights(output: string, workers: number): void {
  const digests = [...output.matchAll(/^weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[1]);
  assert.equal(digests.length, workers, output);
  assert.equal(new Set(digests).size, 1, output);
}

/** The line each worker logs at start: its local rank and device. */
function deviceLines(output: string): Map<number, string> {
  return new Map([...output.matchAll(/^hpctrain rank (\d+) \([^)]*\): (local rank .*)$/gm)].map((m) => [Number(m[1]), m[2]!]));
}

describe('batch scripts on the local Slurm cluster', function () {
  this.timeout(180_000);
  let work: string;
  before(async function () {
    await requireSlurmCluster(this);
  });
  beforeEach(() => {
    work = scratchDir();
  });

  // Each strategy on 2 and 3 nodes: with ps, the first node serves and the others work.
  for (const [nodes, strategy] of [[3, 'allreduce'], [2, 'allreduce'], [3, 'ps'], [2, 'ps']] as const) {
    it(`sbatch --wait slurm/train.slurm on ${nodes} nodes (${strategy}) trains, every worker ends with the same weights, the outputs in the run directory`, async () => {
      const servers = strategy === 'ps' ? 1 : 0;
      const workers = nodes - servers;
      const { exitCode, output, stderr } = await sbatchWait(work, [`--nodes=${nodes}`,
        `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_DATA=synthetic,HPCTRAIN_IMAGE_SIZE=75,HPCTRAIN_BATCH_SIZE=2,HPCTRAIN_STEPS=2,` +
          `HPCTRAIN_NUM_CLASSES=10,HPCTRAIN_STRATEGY=${strategy},HPCTRAIN_NUM_PS=${servers}`]);
      assert.equal(exitCode, 0, `${stderr}\n${output}`);
      assert.match(output, new RegExp(`train\\.slurm: job \\d+ on ${nodes} node\\(s\\) \\(node\\[1-${nodes}\\]\\), 1 rank\\(s\\) per node, train;`));
      assert.match(output, workers > 1 ? new RegExp(`batch 2 per worker x ${workers} workers`) : /batch 2, 2 steps on wasm/);
      if (servers > 0) assert.match(output, /parameter server 0: served 2 steps/);
      assert.equal(output.split('\n').filter((line) => /^step \d\/2 /.test(line)).length, 2, output);
      checkSameWeights(output, workers);
      assert.deepEqual(readStepCsv(join(work, 'run', 'metrics.csv')).map((r) => r.step), [1, 2]);
      assert.deepEqual(readdirSync(join(work, 'run', 'checkpoints')), ['ckpt-000000002.hpct']);
    });
  }

  it('sbatch --wait slurm/train.slurm with HPCTRAIN_COMMAND=rendezvous on 3 nodes: every rank agrees on the spec', async () => {
    const runDir = join(work, 'run');
    const { exitCode, output, stderr, jobId } = await sbatchWait(work, ['--nodes=3', `--export=ALL,HPCTRAIN_RUN_DIR=${runDir},HPCTRAIN_NUM_PS=1,HPCTRAIN_COMMAND=rendezvous`]);
    assert.equal(exitCode, 0, `${stderr}\n${output}`);
    const spec = checkAgreement(output, 3, runDir, { scheduler: 'slurm', launcher: 'srun', addresses: ['node1', 'node2', 'node3'] });
    assert.equal(spec.jobId, jobId);
    assert.equal(spec.cluster.ps.length, 1);
    assert.match(spec.cluster.ps[0]!, /^node1:\d+$/);
    assert.equal(spec.cluster.worker.length, 2);
  });

  it('sbatch --wait reports a failed job when the ranks refuse their settings', async () => {
    const { exitCode, output } = await sbatchWait(work, ['--nodes=2', `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_NUM_PS=2,HPCTRAIN_COMMAND=rendezvous`]);
    assert.notEqual(exitCode, 0);
    assert.match(output, /--num-ps 2 leaves no worker among 2 rank/);
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
    // One line per slot, as PBS writes it: two slots on each of three nodes.
    const result = await runPbsScript(work, ['node1', 'node1', 'node2', 'node2', 'node3', 'node3'], {
      PBS_JOBID: '4242.pbsserver', HPCTRAIN_LAUNCHER: 'mpirun', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_COMMAND: 'rendezvous',
      HPCTRAIN_MPIRUN_ARGS: '--allow-run-as-root --oversubscribe',
    });
    assert.equal(result.exitCode, 0, result.all);
    const spec = checkAgreement(result.stdout, 3, runDir, { scheduler: 'pbs', launcher: 'mpirun', addresses: ['node1', 'node2', 'node3'] });
    assert.equal(spec.jobId, '4242.pbsserver');
  });

  it('pbs/train.pbs\'s aprun path, through the aprun test double', async () => {
    const runDir = join(work, 'run');
    const result = await runPbsScript(work, ['node1', 'node2', 'node3'], { PBS_JOBID: '99.sdb', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_COMMAND: 'rendezvous' }, true);
    assert.equal(result.exitCode, 0, result.all);
    assert.match(result.stdout, /3 node\(s\) through aprun/);
    checkAgreement(result.stdout, 3, runDir, { scheduler: 'pbs', launcher: 'aprun', addresses: ['node1', 'node2', 'node3'] });
  });

  describe('several ranks per node', () => {
    it('sbatch --wait slurm/train.slurm with HPCTRAIN_TASKS_PER_NODE=2, cyclic: each node\'s ranks have local ranks 0 and 1 and stand side by side in the ring', async () => {
      const runDir = join(work, 'run');
      const { exitCode, output, stderr } = await sbatchWait(work, ['--nodes=2', '--ntasks-per-node=2', '--distribution=cyclic',
        `--export=ALL,HPCTRAIN_RUN_DIR=${runDir},HPCTRAIN_TASKS_PER_NODE=2,HPCTRAIN_COMMAND=rendezvous`]);
      assert.equal(exitCode, 0, `${stderr}\n${output}`);
      assert.match(output, /on 2 node\(s\) \(node\[1-2\]\), 2 rank\(s\) per node, rendezvous;/);
      // srun deals the ranks round-robin: 0 and 2 on node1, 1 and 3 on node2.
      const spec = checkAgreement(output, 4, runDir, { scheduler: 'slurm', launcher: 'srun', addresses: ['node1', 'node2', 'node1', 'node2'] });
      checkRanksPerNode(output, spec, 2);
      assert.deepEqual(spec.ring, [0, 2, 1, 3]);
    });

    it('trains with 2 ranks per node under sbatch --wait (cyclic): the mapping line of every rank, the ring in node order, the same weights everywhere', async () => {
      const { exitCode, output, stderr } = await sbatchWait(work, ['--nodes=2', '--ntasks-per-node=2', '--distribution=cyclic',
        `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_TASKS_PER_NODE=2,HPCTRAIN_DATA=synthetic,HPCTRAIN_IMAGE_SIZE=75,HPCTRAIN_BATCH_SIZE=2,` +
          'HPCTRAIN_STEPS=1,HPCTRAIN_NUM_CLASSES=10']);
      assert.equal(exitCode, 0, `${stderr}\n${output}`);
      const devices = deviceLines(output);
      assert.deepEqual([0, 1, 2, 3].map((rank) => devices.get(rank)), [
        'local rank 0 of 2, no GPU: CPU', 'local rank 0 of 2, no GPU: CPU', 'local rank 1 of 2, no GPU: CPU', 'local rank 1 of 2, no GPU: CPU',
      ], output);
      assert.match(output, /^hpctrain rank 0 \(.*\): the ring runs through the workers in node order: ranks 0 2 1 3$/m);
      assert.match(output, /batch 2 per worker x 4 workers/);
      checkSameWeights(output, 4);
    });

    it('slurm/train.slurm starts one rank per GPU Slurm gave the node by default (SLURM_GPUS_ON_NODE)', async () => {
      const runDir = join(work, 'run');
      // Slurm sets SLURM_GPUS_ON_NODE in a job with GPUs; this cluster has none, so the job is given it.
      const { exitCode, output, stderr } = await sbatchWait(work, ['--nodes=1', '--ntasks-per-node=2',
        `--export=ALL,HPCTRAIN_RUN_DIR=${runDir},SLURM_GPUS_ON_NODE=2,HPCTRAIN_COMMAND=rendezvous`]);
      assert.equal(exitCode, 0, `${stderr}\n${output}`);
      assert.match(output, /, 2 rank\(s\) per node, rendezvous;/);
      checkRanksPerNode(output, checkAgreement(output, 2, runDir, { scheduler: 'slurm', launcher: 'srun', addresses: ['node1', 'node1'] }), 2);
    });

    it('slurm/train.slurm refuses a HPCTRAIN_TASKS_PER_NODE that is not a positive integer, and says when the job holds fewer tasks', async () => {
      const bad = await sbatchWait(work, ['--nodes=1', `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_TASKS_PER_NODE=0,HPCTRAIN_COMMAND=rendezvous`]);
      assert.notEqual(bad.exitCode, 0);
      assert.match(bad.output, /HPCTRAIN_TASKS_PER_NODE=0 is not a positive integer: give the ranks per node, e\.g\. HPCTRAIN_TASKS_PER_NODE=4/);
      // One task per node asked of sbatch: srun must not quietly start one rank instead of two.
      const short = await sbatchWait(work, ['--nodes=1', '--ntasks-per-node=1', `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_TASKS_PER_NODE=2,HPCTRAIN_COMMAND=rendezvous`]);
      assert.notEqual(short.exitCode, 0, short.output);
      assert.match(short.output, /note: 2 ranks per node, but the job asked for --ntasks-per-node=1; .* submit with sbatch --ntasks-per-node=2/);
      assert.equal(parseRankLines(short.output).length, 0, short.output);
    });

    it('pbs/train.pbs\'s mpirun path with HPCTRAIN_TASKS_PER_NODE=2 on a node PBS_NODEFILE names twice: mpirun over 2 slots per node, local ranks 0 and 1, one training', async () => {
      // Two slots of this machine, as PBS writes them for select=1:ncpus=2.
      const result = await runPbsScript(work, [hostname(), hostname()], {
        PBS_JOBID: '4343.pbsserver', HPCTRAIN_LAUNCHER: 'mpirun', HPCTRAIN_RUN_DIR: join(work, 'run'),
        HPCTRAIN_TASKS_PER_NODE: '2', HPCTRAIN_MPIRUN_ARGS: '--allow-run-as-root --oversubscribe',
        HPCTRAIN_DATA: 'synthetic', HPCTRAIN_IMAGE_SIZE: '75', HPCTRAIN_BATCH_SIZE: '2', HPCTRAIN_STEPS: '1', HPCTRAIN_NUM_CLASSES: '10',
      });
      assert.equal(result.exitCode, 0, result.all);
      assert.match(result.all!, /train\.pbs: job 4343\.pbsserver, 1 node\(s\) through mpirun, 2 rank\(s\) per node, train;/);
      const devices = deviceLines(result.all!);
      assert.deepEqual([devices.get(0), devices.get(1)], ['local rank 0 of 2, no GPU: CPU', 'local rank 1 of 2, no GPU: CPU'], result.all);
      assert.match(result.all!, /batch 2 per worker x 2 workers/);
      checkSameWeights(result.stdout, 2);
    });

    it('pbs/train.pbs plans from the walltime (PBS_WALLTIME): the ranks stop with a checkpoint before it and exit 75, without any signal', async () => {
      const runDir = join(work, 'run');
      const started = Date.now();
      const result = await runPbsScript(work, [hostname(), hostname()], {
        PBS_JOBID: '4444.pbsserver', PBS_WALLTIME: '75', HPCTRAIN_LAUNCHER: 'mpirun', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_REQUEUE: 'no',
        HPCTRAIN_TASKS_PER_NODE: '2', HPCTRAIN_MPIRUN_ARGS: '--allow-run-as-root --oversubscribe', HPCTRAIN_STOP_MARGIN: '10',
        HPCTRAIN_DATA: 'synthetic', HPCTRAIN_IMAGE_SIZE: '75', HPCTRAIN_BATCH_SIZE: '2', HPCTRAIN_STEPS: '100000', HPCTRAIN_NUM_CLASSES: '4',
      });
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.exitCode, 75, result.all);
      assert.match(result.all!, /lifecycle: .*the job ends at .* \(HPCTRAIN_JOB_END\)/);
      assert.match(result.all!, /stopped at step \d+ of 100000 \(the job's end \(HPCTRAIN_JOB_END\) at .*\), with a checkpoint/);
      assert.match(result.all!, /train\.pbs: HPCTRAIN_REQUEUE=no: not resubmitting; qsub again with -v HPCTRAIN_RUN_DIR=/);
      assert.ok(seconds < 75, `the job ran ${seconds} s, past its walltime of 75 s`);
      const step = Number(/"step": (\d+)/.exec(readFileSync(join(runDir, 'stopped.json'), 'utf8'))![1]);
      assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), [`ckpt-${String(step).padStart(9, '0')}.hpct`]);
    });

    it('pbs/train.pbs\'s aprun path with HPCTRAIN_TASKS_PER_NODE=2: aprun -n 4 -N 2, local rank = ALPS_APP_PE mod 2', async () => {
      const runDir = join(work, 'run');
      const result = await runPbsScript(work, ['node1', 'node1', 'node2', 'node2'], {
        PBS_JOBID: '98.sdb', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_COMMAND: 'rendezvous', HPCTRAIN_TASKS_PER_NODE: '2',
      }, true);
      assert.equal(result.exitCode, 0, result.all);
      assert.match(result.stdout, /2 node\(s\) through aprun, 2 rank\(s\) per node/);
      const spec = checkAgreement(result.stdout, 4, runDir, { scheduler: 'pbs', launcher: 'aprun', addresses: ['node1', 'node1', 'node2', 'node2'] });
      checkRanksPerNode(result.stdout, spec, 2);
      assert.deepEqual(spec.table.map((m) => m.localRank), [0, 1, 0, 1]);
    });

    it('pbs/train.pbs refuses a HPCTRAIN_TASKS_PER_NODE that is not a positive integer before it starts anything', async () => {
      const runDir = join(work, 'run');
      const result = await runPbsScript(work, ['node1'], { PBS_JOBID: '97.sdb', HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_TASKS_PER_NODE: '2x' }, true);
      assert.equal(result.exitCode, 2, result.all);
      assert.equal(existsSync(runDir), false, 'no run directory yet');
      assert.match(result.all!, /train\.pbs: HPCTRAIN_TASKS_PER_NODE=2x is not a positive integer: give the ranks per node, e\.g\. qsub -v HPCTRAIN_TASKS_PER_NODE=4/);
    });
  });
});
