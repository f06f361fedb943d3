// Stopping for the scheduler, as real processes: a signal to one rank (or to the launcher, which
// passes it on) makes every worker stop after the same step with one checkpoint and exit 75, and
// the same command then goes on to the uninterrupted run's weights, with each step once in
// metrics.csv. And the job's end, when known, stops the run by itself before it comes.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { CLI, runCli } from '../helpers/cli.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { makeTempDir, removeDir } from '../data/helpers.js';

const STEPS = 8;
const BASE = ['train', '--data', 'synthetic', '--image-size', '75', '--warmup-epochs', '0', '--log-every', '1', '--batch-size', '2',
  '--checkpoint-minutes', '0', '--eval-batches', '0'];
const COMMON = [...BASE, '--steps', String(STEPS)];
const REQUEUE_STATUS = 75;

/** Every "weights sha256=" line, by the rank that printed it (a launcher's prefix, or 'self'). */
function digests(output: string): Map<string, string> {
  return new Map([...output.matchAll(/^(?:\[rank (\d)\] )?weights sha256=([0-9a-f]{64})/gm)].map((m) => [m[1] ?? 'self', m[2]!]));
}

/** Resolves once the output so far matches. */
async function waitFor(subprocess: ResultPromise, pattern: RegExp, seen: { text: string }): Promise<void> {
  while (!pattern.test(seen.text)) {
    if (subprocess.exitCode !== null) throw new Error(`exited (${subprocess.exitCode}) before ${pattern}:\n${seen.text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function collect(subprocess: ResultPromise): { text: string } {
  const seen = { text: '' };
  subprocess.stdout?.on('data', (chunk: Buffer) => { seen.text += chunk.toString(); });
  subprocess.stderr?.on('data', (chunk: Buffer) => { seen.text += chunk.toString(); });
  return seen;
}

describe('hpctrain train stops for the scheduler (real processes)', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = makeTempDir(); });
  after(() => removeDir(dir));

  for (const [strategy, ranks, extra, workers] of [
    ['allreduce', 2, [], ['0', '1']],
    ['ps', 3, ['--strategy', 'ps', '--num-ps', '1'], ['1', '2']],
  ] as const) {
    it(`on SIGUSR1 to the launcher, every worker stops after the same step with a checkpoint and exit status 75; the same command goes on to the uninterrupted weights (${strategy})`, async () => {
      const whole = await runCli(['launch', '-n', String(ranks), '--', ...COMMON, ...extra, '--run-dir', join(dir, `whole-${strategy}`)]);
      assert.equal(whole.exitCode, 0, whole.stderr);
      const uninterrupted = digests(whole.stdout).get(workers[0]);
      assert.ok(uninterrupted, whole.stdout);

      const runDir = join(dir, `stopped-${strategy}`);
      const args = ['launch', '-n', String(ranks), '--', ...COMMON, ...extra, '--run-dir', runDir];
      const launcher = execa(process.execPath, [CLI, ...args], { reject: false, timeout: 240_000 });
      const seen = collect(launcher);
      await waitFor(launcher, / step 2\/8 /, seen);
      launcher.kill('SIGUSR1');
      const stopped = await launcher;
      assert.equal(stopped.exitCode, REQUEUE_STATUS, seen.text);
      // The launcher signals every rank; the first worker's reason is its own, or another's whose vote came first.
      const at = /stopped at step (\d+) of 8 \((SIGUSR1|another worker's signal or end time)\), with a checkpoint/.exec(seen.text);
      assert.ok(at, seen.text);
      const step = Number(at[1]);
      assert.ok(step >= 3 && step < STEPS, `stopped at step ${step}`);
      // Every worker after the same step, on the same weights; the servers stopped too.
      const atStop = [...seen.text.matchAll(/^\[rank (\d)\] weights sha256=([0-9a-f]{64}) at step (\d+)$/gm)];
      assert.deepEqual(atStop.map((m) => m[1]).sort(), [...workers]);
      assert.equal(new Set(atStop.map((m) => `${m[2]} ${m[3]}`)).size, 1, seen.text);
      assert.equal(Number(atStop[0]![3]), step);
      assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), [`ckpt-${String(step).padStart(9, '0')}.hpct`]);
      const record = JSON.parse(readFileSync(join(runDir, 'stopped.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual({ ...record, at: undefined }, { status: 'stopped', exitStatus: 75, reason: at[2], step, startStep: 0, maxSteps: STEPS, at: undefined });

      const resumed = await runCli(args);
      assert.equal(resumed.exitCode, 0, resumed.stderr);
      assert.match(resumed.stderr, new RegExp(`resuming from .*ckpt-0+${step}\\.hpct: step ${step}`));
      for (const worker of workers) assert.equal(digests(resumed.stdout).get(worker), uninterrupted, `worker ${worker} ended elsewhere than the uninterrupted run`);
      assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8], 'metrics.csv holds each step once');
      assert.ok(!existsSync(join(runDir, 'stopped.json')), 'the finished run removed the stop record');
    });
  }

  it('keeps a SIGUSR1 that comes while the rank starts (before the model is built): the run stops after its second step with a checkpoint, and the same command goes on', async () => {
    const runDir = join(dir, 'early-signal');
    const args = [...COMMON, '--run-dir', runDir];
    const rank = execa(process.execPath, [CLI, ...args], { reject: false, timeout: 240_000 });
    const seen = collect(rank);
    // Logged once the backend is chosen: the data, the model and the lifecycle are still to come.
    await waitFor(rank, /backend wasm: chosen/, seen);
    rank.kill('SIGUSR1');
    const stopped = await rank;
    assert.equal(stopped.exitCode, REQUEUE_STATUS, seen.text);
    assert.match(seen.text, /got SIGUSR1 while starting: the run stops after its second step, with a checkpoint/);
    const record = JSON.parse(readFileSync(join(runDir, 'stopped.json'), 'utf8')) as { step: number; reason: string };
    assert.deepEqual([record.step, record.reason], [2, 'SIGUSR1']);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), ['ckpt-000000002.hpct']);
    const resumed = await runCli(args);
    assert.equal(resumed.exitCode, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming from .*ckpt-000000002\.hpct: step 2/);
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8], 'metrics.csv holds each step once');
  });

  it('on SIGTERM to one worker alone (not the first), the others learn of it through the step\'s exchange and stop after the same step', async () => {
    const port = await getFreePortBlock(4);
    const runDir = join(dir, 'sigterm');
    const env = { HPCTRAIN_SIZE: '2', HPCTRAIN_JOB_ID: `stop-${port}`, HPCTRAIN_PORT: String(port), HPCTRAIN_SECRET: 'stop test' };
    const ranks = [0, 1].map((rank) => execa(process.execPath, [CLI, ...BASE, '--steps', '1000', '--run-dir', runDir], {
      // SIGKILL 60 s after a SIGTERM, not execa's 5 s: a rank takes up to 3 steps and a checkpoint to stop.
      env: { ...env, HPCTRAIN_RANK: String(rank) }, reject: false, timeout: 240_000, forceKillAfterDelay: 60_000,
    }));
    const seen = ranks.map(collect);
    await waitFor(ranks[0]!, /^step 2\/1000 /m, seen[0]!);
    const signalled = Date.now();
    const stepAtSignal = Math.max(...[...seen[0]!.text.matchAll(/^step (\d+)\/1000 /gm)].map((m) => Number(m[1])));
    ranks[1]!.kill('SIGTERM');
    const results = await Promise.all(ranks);
    const seconds = (Date.now() - signalled) / 1000;
    for (const [rank, result] of results.entries()) assert.equal(result.exitCode, REQUEUE_STATUS, seen[rank]!.text);
    assert.match(seen[1]!.text, /got SIGTERM: every worker stops within 3 steps, after the same one/);
    assert.match(seen[0]!.text, /stopping after step \d+ with a checkpoint: asked by 1 of 2 worker\(s\)/);
    const [first, second] = seen.map((s) => /weights sha256=([0-9a-f]{64}) at step (\d+)/.exec(s.text)?.slice(1));
    assert.ok(first && second);
    assert.deepEqual(first, second);
    const record = JSON.parse(readFileSync(join(runDir, 'stopped.json'), 'utf8')) as { step: number; reason: string };
    assert.equal(record.step, Number(first[1]));
    assert.equal(record.reason, 'another worker\'s signal or end time');
    assert.ok(seconds < 30, `${seconds} s from SIGTERM to exit: more than Slurm's KillWait`);
    const checkpointSeconds = /checkpoint \S+ \((\d+\.\d) s\)/.exec(seen[0]!.text)?.[1];
    console.log(`      SIGTERM at step ${stepAtSignal}, stopped after step ${record.step}, exit ${seconds.toFixed(1)} s after the signal, checkpoint ${checkpointSeconds} s; steps lost: 0`);
  });

  it('stops by itself before the job\'s end (HPCTRAIN_JOB_END), with the margin, and exits 75', async () => {
    const runDir = join(dir, 'end-time');
    // The end 70 s away and a margin of 20 s: with the first checkpoint's guessed 30 s, the run must
    // stop when 2 steps, the checkpoint and the margin no longer fit in what is left.
    const endsAt = Math.floor(Date.now() / 1000) + 70;
    const result = await runCli([...BASE, '--steps', '100000', '--stop-margin', '20', '--run-dir', runDir], { env: { HPCTRAIN_JOB_END: String(endsAt) } });
    assert.equal(result.exitCode, REQUEUE_STATUS, result.stderr);
    assert.match(result.stderr, /lifecycle: .*the job ends at .* \(HPCTRAIN_JOB_END\)/);
    assert.ok(Date.now() / 1000 < endsAt, 'the run went past the job\'s end');
    const record = JSON.parse(readFileSync(join(runDir, 'stopped.json'), 'utf8')) as { step: number; reason: string };
    assert.match(record.reason, /^the job's end \(HPCTRAIN_JOB_END\) at .* is \d+ s away/);
    assert.ok(record.step >= 2, `stopped at step ${record.step}`);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), [`ckpt-${String(record.step).padStart(9, '0')}.hpct`]);
  });
});
