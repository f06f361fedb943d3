// `hpctrain train` as real processes: one rank, ranks through the local launcher with each
// strategy, a resume from a checkpoint (past a corrupt one) that lands on the uninterrupted run's
// weights, and a parameter server killed mid-training.
import assert from 'node:assert/strict';
import { cpSync, existsSync, openSync, readFileSync, readdirSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { CLI, runCli } from '../helpers/cli.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { makeTempDir, removeDir, writeImagenetTrain } from '../data/helpers.js';

const SMALL = ['--image-size', '75', '--warmup-epochs', '0', '--log-every', '1'];

function digestsOf(stdout: string): Map<string, string> {
  return new Map([...stdout.matchAll(/^\[rank (\d)\] weights sha256=([0-9a-f]{64})$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('hpctrain train (real processes)', function () {
  this.timeout(300_000);
  let dir: string;
  before(async () => {
    dir = makeTempDir();
    await writeImagenetTrain(dir, 3, 4, [96, 96]);
    cpSync(join(dir, 'train'), join(dir, 'validation'), { recursive: true });
  });
  after(() => removeDir(dir));

  it('trains one rank on an ILSVRC2012-layout directory: a line per step, metrics.csv, summary.json, a checkpoint, evaluation', async () => {
    const runDir = join(dir, 'run-single');
    const result = await runCli(['train', '--data', dir, ...SMALL, '--batch-size', '4', '--steps', '3', '--run-dir', runDir]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /backend wasm: chosen: @tensorflow\/tfjs-backend-wasm/);
    assert.match(result.stderr, /train: ImageNet folders train\/ in .* \(class folders\): 12 images, 3 classes; rank 0 of 1 reads 3 batches of 4 per epoch/);
    assert.match(result.stderr, /Inception-V3 75x75, 3 classes, [\d,]+ parameters; batch 4, learning rate 0\.0001125, 3 steps on wasm, ring allreduce/);
    const steps = result.stdout.split('\n').filter((line) => line.startsWith('step '));
    assert.equal(steps.length, 3, result.stdout);
    assert.match(steps[2]!, /^step 3\/3 epoch 1\.00 loss=\d+\.\d{4} top1=\d\.\d{3} lr=[\d.e-]+ grad_norm=\d+\.\d{3} img_per_s=\d+\.\d\d data_ms=\d+ compute_ms=\d+ comm_ms=\d+ slowest=rank0:\d+ms eta=0s$/);
    assert.match(result.stdout, /^eval top1=\d\.\d{4} top5=1\.0000 on 12 validation images \(moving average weights\)$/m, 'with 3 classes every label is in the top 5');
    assert.match(result.stdout, /^trained 3 steps in [\d.]+ s: [\d.]+ images\/s, loss [\d.]+ -> [\d.]+$/m);
    const rows = readStepCsv(join(runDir, 'metrics.csv'));
    assert.deepEqual(rows.map((r) => r.step), [1, 2, 3]);
    assert.deepEqual(rows.map((r) => r.images), [4, 8, 12]);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(summary.steps, 3);
    assert.deepEqual(summary.eval, JSON.parse(JSON.stringify(summary.eval)));
    assert.equal((summary.eval as { images: number }).images, 12);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), ['ckpt-000000003.hpct']);
  });

  for (const [strategy, extra, workerRanks] of [['allreduce', [], ['0', '1', '2']], ['ps', ['--strategy', 'ps', '--num-ps', '1'], ['1', '2']]] as const) {
    it(`trains on 3 ranks through the local launcher (${strategy}), each worker its shard, ending with the same weights on every worker`, async () => {
      const result = await runCli(['launch', '-n', '3', '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '3',
        '--run-dir', join(dir, `run-${strategy}`), '--eval-batches', '0', ...extra]);
      assert.equal(result.exitCode, 0, result.stderr);
      const workers = workerRanks.length;
      assert.match(result.stderr, new RegExp(`rank ${workerRanks[0]} .*rank 0 of ${workers} reads \\d batches of 2 per epoch`));
      assert.match(result.stderr, new RegExp(`batch 2 per worker x ${workers} workers, learning rate [\\d.]+, 3 steps on wasm, ${strategy === 'ps' ? '1 parameter server\\(s\\), variables placed by size' : 'ring allreduce'}`));
      const steps = result.stdout.split('\n').filter((line) => / step \d+\/3 /.test(line));
      assert.equal(steps.length, 3, result.stdout);
      for (const line of steps) assert.match(line, new RegExp(`^\\[rank ${workerRanks[0]}\\] step \\d/3 epoch [\\d.]+ loss=\\d+\\.\\d{4} .* slowest=rank[${workerRanks.join('')}]:\\d+ms eta=\\S+$`));
      const digests = digestsOf(result.stdout);
      assert.deepEqual([...digests.keys()].sort(), [...workerRanks]);
      assert.equal(new Set(digests.values()).size, 1, result.stdout);
      if (strategy === 'ps') assert.match(result.stderr, /\[rank 0\] .*parameter server 0: served 3 steps of [\d,]+ values; stopping/);
    });
  }

  it('resumes past a corrupt newest checkpoint from the one before it, and ends where the uninterrupted run ended', async () => {
    const runDir = join(dir, 'run-resume');
    const args = ['launch', '-n', '2', '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '4', '--checkpoint-every', '2',
      '--eval-batches', '0', '--run-dir', runDir];
    const whole = await runCli(args);
    assert.equal(whole.exitCode, 0, whole.stderr);
    const uninterrupted = digestsOf(whole.stdout).get('0');
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['ckpt-000000002.hpct', 'ckpt-000000004.hpct']);
    // A flipped byte in the middle of step 4's weights: the run must notice and take step 2's.
    const newest = join(runDir, 'checkpoints', 'ckpt-000000004.hpct');
    const fd = openSync(newest, 'r+');
    const middle = Math.floor(fstatSync(fd).size / 2);
    writeSync(fd, Buffer.from([0x5a]), 0, 1, middle);
    closeSync(fd);
    const resumed = await runCli(args);
    assert.equal(resumed.exitCode, 0, resumed.stderr);
    assert.match(resumed.stderr, /ckpt-000000004\.hpct.*(checksum|corrupt)/i);
    assert.match(resumed.stderr, /resuming from .*ckpt-000000002\.hpct: step 2/);
    assert.deepEqual(resumed.stdout.split('\n').filter((l) => / step \d\/4 /.test(l)).map((l) => /step (\d)\/4/.exec(l)![1]), ['3', '4']);
    assert.equal(digestsOf(resumed.stdout).get('0'), uninterrupted, 'the resumed run ended elsewhere');
    assert.equal(digestsOf(resumed.stdout).get('1'), uninterrupted);
    assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4], 'the CSV holds each step once');
    // Once more: the newest checkpoint is at the last step, so there is nothing left to train.
    const again = await runCli(args);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stderr, /at or past the last step \(4\): nothing to train/);
    assert.doesNotMatch(again.stdout, / step \d\/4 /);
    assert.equal(digestsOf(again.stdout).get('1'), uninterrupted);
  });

  it('when a parameter server is killed mid-training, every worker exits non-zero within 30 s, naming it', async () => {
    const port = await getFreePortBlock(4);
    const env = { HPCTRAIN_SIZE: '3', HPCTRAIN_JOB_ID: `kill-${port}`, HPCTRAIN_PORT: String(port), HPCTRAIN_SECRET: 'kill test' };
    const ranks = [0, 1, 2].map((rank) => execa(process.execPath, [CLI, 'train', '--data', 'synthetic', ...SMALL, '--batch-size', '2', '--steps', '1000',
      '--strategy', 'ps', '--num-ps', '1', '--eval-batches', '0', '--run-dir', join(dir, 'run-kill')], {
      env: { ...env, HPCTRAIN_RANK: String(rank) }, reject: false, timeout: 240_000, all: true,
    }));
    let output = '';
    ranks[1]!.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    while (!/step 2\/1000/.test(output)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (ranks[1]!.exitCode !== null) break;
    }
    const killedAt = Date.now();
    ranks[0]!.kill('SIGKILL');
    const [, first, second] = await Promise.all(ranks);
    for (const worker of [first!, second!]) {
      assert.notEqual(worker.exitCode, 0, worker.all);
      assert.match(worker.all ?? '', /rank 0 \(\S+\)/, worker.all);
    }
    assert.ok(Date.now() - killedAt < 30_000, `the workers took ${(Date.now() - killedAt) / 1000} s to stop`);
    assert.ok(existsSync(join(dir, 'run-kill', 'metrics.csv')), 'the steps done before the kill are on disk');
  });

  it('refuses a batch that cannot fit in the wasm heap, before the first step', async () => {
    const result = await runCli(['train', '--backend', 'wasm', '--image-size', '299', '--batch-size', '16', '--steps', '1', '--run-dir', join(dir, 'run-big')]);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stderr, /hint: the largest batch that fits at 299x299 is 11/);
    assert.doesNotMatch(result.stdout, /^step /m);
  });

  it('refuses --num-ps without --strategy ps, and --strategy ps without servers', async () => {
    const stray = await runCli(['train', '--num-ps', '1', '--steps', '1']);
    assert.equal(stray.exitCode, 2, stray.stderr);
    assert.match(stray.stderr, /--num-ps 1 applies to --strategy ps/);
    const none = await runCli(['train', '--strategy', 'ps', '--steps', '1']);
    assert.equal(none.exitCode, 2, none.stderr);
    assert.match(none.stderr, /--strategy ps needs parameter servers/);
  });
});
