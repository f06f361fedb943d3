// Time limits, signals and requeues through the real batch script on the real local Slurm
// cluster: a job whose time limit comes mid-training, one signalled with scancel and then
// requeued by an admin's scontrol requeue, and the cap on requeues. Each must end on the weights
// of the uninterrupted run, with every step once in metrics.csv.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { runCli } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';
import { REPO, requireSlurmCluster, waitForJob } from '../helpers/slurm.js';

const STEPS = 100;
const SETTINGS = { HPCTRAIN_DATA: 'synthetic', HPCTRAIN_IMAGE_SIZE: '75', HPCTRAIN_BATCH_SIZE: '2', HPCTRAIN_STEPS: String(STEPS), HPCTRAIN_NUM_CLASSES: '4',
  HPCTRAIN_EVAL_BATCHES: '0', HPCTRAIN_LOG_EVERY: '1', HPCTRAIN_COMPUTE_THREADS: '1' };
/** NAME=value,... as sbatch --export and qsub -v take them. */
const varsOf = (settings: Record<string, string>): string => Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(',');
const exportOf = (settings: Record<string, string>): string => `--export=ALL,${varsOf(settings)}`;

/** The digest of the same training in one go through the local launcher: what every requeued job must end on. */
async function uninterruptedDigest(work: string, settings: Record<string, string>): Promise<string> {
  const whole = await runCli(['launch', '-n', '2', '--', 'train', '--run-dir', join(work, 'whole')], { env: settings, timeoutMs: 400_000 });
  assert.equal(whole.exitCode, 0, whole.stderr);
  return /^\[rank 0\] weights sha256=([0-9a-f]{64})$/m.exec(whole.stdout)![1]!;
}

/**
 * Slurm holds a requeued job for about two minutes before it may start again; the tests do not
 * wait for that, but only once its nodes are idle again (started earlier, a job finds the
 * credential of its last run revoked and fails).
 */
function hurryRequeues(jobId: () => string | undefined): () => void {
  let running = true;
  void (async () => {
    let pendingSince: number | undefined;
    while (running) {
      const id = jobId();
      if (id) {
        const state = String((await execa('squeue', ['-h', '-j', id, '-o', '%T'], { reject: false })).stdout).trim();
        pendingSince = state === 'PENDING' ? (pendingSince ?? Date.now()) : undefined;
        const nodes = String((await execa('sinfo', ['-h', '-o', '%T'], { reject: false })).stdout).trim().split('\n');
        if (pendingSince !== undefined && Date.now() - pendingSince > 3000 && nodes.every((node) => node === 'idle')) {
          await execa('scontrol', ['update', `jobid=${id}`, 'StartTime=now'], { reject: false });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => {
    running = false;
  };
}

/** sbatch --wait of slurm/train.slurm, with `during` run on its job id (and the output so far) meanwhile. */
async function sbatchWait(work: string, args: string[], during?: (jobId: string, output: () => string) => Promise<void>) {
  const subprocess = execa('sbatch', ['--wait', '--parsable', `--output=${work}/slurm-%j.out`, ...args, 'slurm/train.slurm'], { cwd: REPO, reject: false, buffer: true });
  let jobId: string | undefined;
  subprocess.stdout?.on('data', (chunk: Buffer) => { jobId ??= /^(\d+)/.exec(chunk.toString())?.[1]; });
  const output = () => {
    try {
      return jobId ? readFileSync(join(work, `slurm-${jobId}.out`), 'utf8') : '';
    } catch {
      return '';
    }
  };
  const stop = hurryRequeues(() => jobId);
  try {
    if (during) {
      while (!jobId) await new Promise((resolve) => setTimeout(resolve, 200));
      await during(jobId, output);
    }
    const result = await subprocess;
    return { exitCode: result.exitCode, output: output(), stderr: String(result.stderr), jobId: jobId! };
  } finally {
    stop();
  }
}

async function until(what: string, test: () => boolean, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const digestsOf = (output: string): string[] => [...output.matchAll(/^weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[1]!);
const runsOf = (output: string): number => output.split('\n').filter((line) => /^train\.slurm: job \d+ on 2 node/.test(line)).length;

describe('time limits and requeues on the local Slurm cluster', function () {
  this.timeout(600_000);
  let uninterrupted: string;
  before(async function () {
    await requireSlurmCluster(this);
    uninterrupted = await uninterruptedDigest(scratchDir(), SETTINGS);
  });

  it('a job whose time limit comes mid-training (--time=3, USR1 120 s ahead) checkpoints, requeues itself, resumes and ends on the uninterrupted weights', async () => {
    const work = scratchDir();
    const runDir = join(work, 'run');
    // No margin of the trainer's own: the signal, not the planner, is what this job stops on.
    const { exitCode, output, stderr } = await sbatchWait(work, ['--nodes=2', '--time=3', '--signal=USR1@120',
      exportOf({ ...SETTINGS, HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_STOP_MARGIN: '0' })]);
    assert.equal(exitCode, 0, `${stderr}\n${output}`);
    assert.match(output, /lifecycle: .*the job ends at .* \(squeue %L\)/);
    // Slurm sends it about 60 s into a run (30 s later at most); on a loaded machine the ranks may still be starting.
    assert.match(output, /got SIGUSR1(: every worker stops within 3 steps, after the same one| while starting: the run stops after its second step)/);
    assert.match(output, /train\.slurm: scontrol requeue \d+ \(requeue 1 of at most 10\)/);
    assert.ok(runsOf(output) >= 2, output);
    assert.match(output, /resuming from .*ckpt-\d+\.hpct: step \d+/);
    const steps = readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step);
    assert.deepEqual(steps, Array.from({ length: STEPS }, (_, i) => i + 1), 'metrics.csv holds every step once');
    const digests = digestsOf(output);
    assert.equal(digests.length, 2, output);
    for (const digest of digests) assert.equal(digest, uninterrupted, 'the requeued job ended elsewhere than the uninterrupted run');
  });

  it('scancel --signal=USR1 mid-run, then an admin\'s scontrol requeue mid-run: each time it checkpoints and resumes; it ends on the uninterrupted weights, every step once', async () => {
    const work = scratchDir();
    const runDir = join(work, 'run');
    const { exitCode, output, stderr } = await sbatchWait(work, ['--nodes=2', exportOf({ ...SETTINGS, HPCTRAIN_RUN_DIR: runDir })], async (jobId, soFar) => {
      await until('step 5', () => /^step 5\/100 /m.test(soFar()));
      await execa('scancel', ['--signal=USR1', jobId]);
      // Two steps into the second run, after its resume.
      await until('the second run', () => (soFar().split('resuming from').slice(1).at(-1)?.match(/^step \d+\/100 /gm) ?? []).length >= 2);
      await execa('scontrol', ['requeue', jobId]);
    });
    assert.equal(exitCode, 0, `${stderr}\n${output}`);
    // scancel signals every rank, each when it comes to it: the first worker's reason is its own, or another's if that came first.
    assert.match(output, /stopped at step \d+ of 100 \((SIGUSR1|another worker's signal or end time)\), with a checkpoint/);
    // The admin's requeue sends SIGTERM: the ranks checkpoint within KillWait too.
    assert.match(output, /got SIGTERM: every worker stops within 3 steps, after the same one/);
    assert.match(output, /stopped at step \d+ of 100 \((SIGTERM|another worker's signal or end time)\), with a checkpoint/);
    assert.equal(runsOf(output), 3, output);
    assert.equal([...output.matchAll(/resuming from .*ckpt-\d+\.hpct: step \d+/g)].length, 2, output);
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), Array.from({ length: STEPS }, (_, i) => i + 1), 'metrics.csv holds every step once');
    const digests = digestsOf(output);
    assert.equal(digests.length, 2, output);
    for (const digest of digests) assert.equal(digest, uninterrupted, 'the requeued job ended elsewhere than the uninterrupted run');
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).at(-1), `ckpt-${String(STEPS).padStart(9, '0')}.hpct`);
  });

  it('stops requeueing at HPCTRAIN_MAX_REQUEUES, saying so, with the checkpoint kept', async () => {
    const work = scratchDir();
    const runDir = join(work, 'run');
    // A margin longer than any job: every run stops after its second step, as a job cut short every time would.
    const { exitCode, output } = await sbatchWait(work, ['--nodes=2',
      exportOf({ ...SETTINGS, HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_STOP_MARGIN: '100000', HPCTRAIN_MAX_REQUEUES: '1' })]);
    assert.equal(exitCode, 75, output);
    assert.equal(runsOf(output), 2, output);
    assert.match(output, /train\.slurm: requeued 1 time\(s\) already, HPCTRAIN_MAX_REQUEUES=1: not again; resubmit with HPCTRAIN_RUN_DIR=/);
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4]);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).at(-1), 'ckpt-000000004.hpct');
  });

  it('with HPCTRAIN_REQUEUE=sbatch (where scontrol requeue is not allowed) it submits itself again after the job, with its log and run directory; the new job resumes and ends on the uninterrupted weights', async () => {
    const work = scratchDir();
    const runDir = join(work, 'run');
    const settings = { ...SETTINGS, HPCTRAIN_STEPS: '4' };
    const reference = await uninterruptedDigest(work, settings);
    // The first run stops after its second step (a margin longer than the job); the second finishes.
    const first = await sbatchWait(work, ['--nodes=2', exportOf({ ...settings, HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_STOP_MARGIN: '100000', HPCTRAIN_REQUEUE: 'sbatch' })]);
    assert.equal(first.exitCode, 75, first.output);
    assert.match(first.output, new RegExp(`train\\.slurm: sbatch --dependency=afterany:${first.jobId} --nodes=2 .*--time=30:00 .*--output=${work}/slurm-${first.jobId}\\.out`));
    const next = /^Submitted batch job (\d+)$/m.exec(first.output)?.[1];
    assert.ok(next, first.output);
    const second = await waitForJob(next, 300_000);
    const output = readFileSync(join(work, `slurm-${first.jobId}.out`), 'utf8');
    assert.equal(`${second.state} ${second.exitCode}`, 'COMPLETED 0:0', output);
    assert.match(output, /\(run 2 of at most 11\)/);
    assert.match(output, /resuming from .*ckpt-000000002\.hpct: step 2/);
    const digests = digestsOf(output);
    assert.equal(digests.length, 2, output);
    for (const digest of digests) assert.equal(digest, reference, 'the resubmitted job ended elsewhere than the uninterrupted run');
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4]);
  });

  it('qsub pbs/train.pbs through the Torque wrappers: stopped early, it submits itself again after the job (-W depend=afterany), which resumes and ends on the uninterrupted weights', async () => {
    const work = scratchDir();
    const runDir = join(work, 'run');
    const settings = { ...SETTINGS, HPCTRAIN_STEPS: '4' };
    const reference = await uninterruptedDigest(work, settings);
    // A margin longer than the walltime: the first run stops after its second step, as one cut short by the walltime would.
    const vars = varsOf({ ...settings, HPCTRAIN_RUN_DIR: runDir, HPCTRAIN_STOP_MARGIN: '100000' });
    const out = join(work, 'pbs.out');
    const submitted = await execa('qsub', ['-V', '-l', 'nodes=2', '-l', 'walltime=00:10:00', '-o', out, '-j', 'oe', '-v', vars, 'pbs/train.pbs'], { cwd: REPO });
    const first = await waitForJob(submitted.stdout.trim(), 300_000);
    const output = readFileSync(out, 'utf8');
    assert.equal(`${first.state} ${first.exitCode}`, 'FAILED 75:0', output);
    assert.match(output, /stopped at step 2 of 4 \(the job's end \(squeue %L\) at .*\), with a checkpoint/);
    assert.match(output, /train\.pbs: qsub -V -W depend=afterany:\d+ .*-l walltime=00:10:00 -l nodes=2 -o \S+pbs\.out\.1 /);
    const next = /^(\d+)$/m.exec(output)?.[1];
    assert.ok(next, output);
    const second = await waitForJob(next, 300_000);
    const resumed = readFileSync(`${out}.1`, 'utf8');
    assert.equal(`${second.state} ${second.exitCode}`, 'COMPLETED 0:0', resumed);
    assert.match(resumed, /run 2 of at most 11/);
    assert.match(resumed, /resuming from .*ckpt-000000002\.hpct: step 2/);
    const digests = digestsOf(resumed);
    assert.equal(digests.length, 2, resumed);
    for (const digest of digests) assert.equal(digest, reference, 'the resubmitted job ended elsewhere than the uninterrupted run');
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4]);
  });
});
