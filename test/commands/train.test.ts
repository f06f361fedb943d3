// `hpctrain train` as real processes: one rank, ranks through the local launcher with each
// strategy, a resume from a checkpoint (past a corrupt one) that lands on the uninterrupted run's
// weights, and a parameter server killed mid-training.
import assert from 'node:assert/strict';
import { cpSync, existsSync, openSync, readFileSync, readdirSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { readCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { EVAL_TABLE, readRecordCsv, readStepCsv, type EvalRecord } from '../../src/metrics/csv.js';
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
    await writeImagenetTrain(dir, 6, 4, [96, 96]);
    cpSync(join(dir, 'train'), join(dir, 'validation'), { recursive: true });
  });
  after(() => removeDir(dir));

  it('trains one rank on an ILSVRC2012-layout directory: the recipe, a line per step, metrics.csv, eval.csv, summary.json, a checkpoint, evaluation', async () => {
    const runDir = join(dir, 'run-single');
    const result = await runCli(['train', '--data', dir, ...SMALL, '--batch-size', '4', '--steps', '3', '--run-dir', runDir]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /backend wasm: chosen: @tensorflow\/tfjs-backend-wasm/);
    assert.match(result.stderr, /train: ImageNet folders train\/ in .* \(class folders\): 24 images, 6 classes; rank 0 of 1 reads 6 batches of 4 per epoch/);
    assert.match(result.stderr, /validation: ImageNet folders validation\/ in .*: 24 images, 6 classes/);
    assert.match(result.stderr, /Inception-V3 75x75, 6 classes, [\d,]+ parameters; batch 4, 3 steps on wasm( with \d+ compute threads)?, ring allreduce/);
    assert.match(result.stderr, /recipe default: adamw \(beta1 0\.9, beta2 0\.999, epsilon 1e-8, decoupled weight decay 0\.01 on 95 kernels\); learning rate 0\.0003536 \(0\.001 x sqrt\(global batch 4 \/ 32\)\), warm-up 0 of 3 steps/);
    assert.match(result.stderr, /warning: batch norm in mixed9 and mixed10 normalises over 4 values per channel .* use --image-size \d+ .* or --batch-size 32 or more/);
    const steps = result.stdout.split('\n').filter((line) => line.startsWith('step '));
    assert.equal(steps.length, 3, result.stdout);
    assert.match(steps[2]!, /^step 3\/3 epoch 0\.50 loss=\d+\.\d{4} top1=\d\.\d{3} lr=[\d.e-]+ grad_norm=\d+\.\d{3} img_per_s=\d+\.\d\d data_ms=\d+ compute_ms=\d+ comm_ms=\d+ slowest=rank0:\d+ms eta=0s$/);
    const evalLine = /^eval top1=(\d\.\d{4}) top5=(\d\.\d{4}) loss=(\d+\.\d{4}) on 24 validation images \(trained weights\)$/m.exec(result.stdout);
    assert.ok(evalLine, result.stdout);
    assert.match(result.stdout, /^trained 3 steps in [\d.]+ s: [\d.]+ images\/s, loss [\d.]+ -> [\d.]+$/m);
    const rows = readStepCsv(join(runDir, 'metrics.csv'));
    assert.deepEqual(rows.map((r) => r.step), [1, 2, 3]);
    assert.deepEqual(rows.map((r) => r.images), [4, 8, 12]);
    // The printed evaluation, eval.csv's row and summary.json's agree (--eval-every 1 epoch: 6 steps, so only the one at the end).
    const evaluations = readRecordCsv(join(runDir, 'eval.csv'), EVAL_TABLE);
    assert.equal(evaluations.length, 1);
    const [row] = evaluations;
    assert.deepEqual([row!.step, row!.weights, row!.images], [3, 'trained', 24]);
    assert.deepEqual([row!.top1.toFixed(4), row!.top5.toFixed(4), row!.loss.toFixed(4)], [evalLine[1], evalLine[2], evalLine[3]]);
    // Counts of the 24 images, each image once: whole numbers of hits, top-1 among the top-5 (with 6 classes, top-5 may well be all of them).
    for (const rate of [row!.top1, row!.top5]) assert.ok(Number.isInteger(Math.round(rate * 24 * 1e6) / 1e6), `${rate} of 24 images is not a count`);
    assert.ok(row!.top1 <= row!.top5 && row!.top5 <= 1 && row!.loss > 0 && Number.isFinite(row!.loss), JSON.stringify(row));
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as { steps: number; eval: { trained: EvalRecord; ema?: EvalRecord }; recipe: { name: string; optimizer: { name: string } } };
    assert.equal(summary.steps, 3);
    assert.deepEqual(summary.eval.trained, row);
    assert.equal(summary.eval.ema, undefined, 'the default recipe has no moving average');
    assert.deepEqual([summary.recipe.name, summary.recipe.optimizer.name], ['default', 'adamw']);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')), ['ckpt-000000003.hpct']);
  });

  it('evaluates every --eval-every epochs, the trained weights and their moving average, each a row of eval.csv', async () => {
    const runDir = join(dir, 'run-eval-every');
    const result = await runCli(['launch', '-n', '2', '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '7', '--eval-every', '0.5',
      '--ema-decay', '0.9', '--run-dir', runDir]);
    assert.equal(result.exitCode, 0, result.stderr);
    // 24 images over 2 workers at batch 2: 6 steps per epoch, so evaluations after steps 3 and 6, and at the end (7).
    const rows = readRecordCsv(join(runDir, 'eval.csv'), EVAL_TABLE);
    assert.deepEqual(rows.map((r) => `${r.step}:${r.weights}:${r.images}`), ['3:trained:24', '3:ema:24', '6:trained:24', '6:ema:24', '7:trained:24', '7:ema:24']);
    assert.deepEqual(rows.map((r) => r.epoch), [0.5, 0.5, 1, 1, 7 / 6, 7 / 6]);
    assert.notEqual(rows[4]!.loss, rows[5]!.loss, 'the moving average was evaluated as the trained weights');
    assert.match(result.stdout, /^\[rank 0\] eval top1=\d\.\d{4} top5=\d\.\d{4} loss=[\d.]+ on 24 validation images \(moving average of the weights\)$/m);
    assert.equal(new Set(digestsOf(result.stdout).values()).size, 1, 'the evaluations left the workers with different weights');
  });

  for (const [strategy, extra, workerRanks] of [['allreduce', [], ['0', '1', '2']], ['ps', ['--strategy', 'ps', '--num-ps', '1'], ['1', '2']]] as const) {
    it(`trains on 3 ranks through the local launcher (${strategy}), each worker its shard, ending with the same weights on every worker`, async () => {
      const result = await runCli(['launch', '-n', '3', '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '3',
        '--run-dir', join(dir, `run-${strategy}`), '--eval-batches', '0', ...extra]);
      assert.equal(result.exitCode, 0, result.stderr);
      const workers = workerRanks.length;
      assert.match(result.stderr, new RegExp(`rank ${workerRanks[0]} .*rank 0 of ${workers} reads \\d batches of 2 per epoch`));
      assert.match(result.stderr, new RegExp(`batch 2 per worker x ${workers} workers, 3 steps on wasm, ${strategy === 'ps' ? '1 parameter server\\(s\\), variables placed by size' : 'ring allreduce'}`));
      const steps = result.stdout.split('\n').filter((line) => / step \d+\/3 /.test(line));
      assert.equal(steps.length, 3, result.stdout);
      for (const line of steps) assert.match(line, new RegExp(`^\\[rank ${workerRanks[0]}\\] step \\d/3 epoch [\\d.]+ loss=\\d+\\.\\d{4} .* slowest=rank[${workerRanks.join('')}]:\\d+ms eta=\\S+$`));
      const digests = digestsOf(result.stdout);
      assert.deepEqual([...digests.keys()].sort(), [...workerRanks]);
      assert.equal(new Set(digests.values()).size, 1, result.stdout);
      if (strategy === 'ps') assert.match(result.stderr, /\[rank 0\] .*parameter server 0: served 3 steps of [\d,]+ values; stopping/);
    });
  }

  for (const [strategy, extra, firstWorker] of [['allreduce', ['--ema-decay', '0.9'], '0'], ['ps', ['--strategy', 'ps', '--num-ps', '1', '--recipe', 'inception-paper'], '1']] as const) {
    it(`resumes past a corrupt newest checkpoint from the one before it, and ends where the uninterrupted run ended: weights, moving average and optimizer state (${strategy})`, async () => {
      const runDir = join(dir, `run-resume-${strategy}`);
      const workers = strategy === 'ps' ? ['1', '2'] : ['0', '1'];
      const args = ['launch', '-n', strategy === 'ps' ? '3' : '2', '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '4', '--checkpoint-every', '2',
        '--eval-batches', '0', '--run-dir', runDir, ...extra];
      const whole = await runCli(args);
      assert.equal(whole.exitCode, 0, whole.stderr);
      const uninterrupted = digestsOf(whole.stdout).get(firstWorker);
      assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['ckpt-000000002.hpct', 'ckpt-000000004.hpct']);
      const newest = join(runDir, 'checkpoints', 'ckpt-000000004.hpct');
      const final = await readCheckpoint(newest);
      const slots = strategy === 'ps' ? ['optimizer.ms', 'optimizer.mom'] : ['optimizer.m', 'optimizer.v'];
      assert.deepEqual(Object.keys(final.arrays).sort(), ['ema', ...slots, 'weights'].sort());
      // A flipped byte in the middle of step 4's weights: the run must notice and take step 2's.
      const fd = openSync(newest, 'r+');
      const middle = Math.floor(fstatSync(fd).size / 2);
      writeSync(fd, Buffer.from([0x5a]), 0, 1, middle);
      closeSync(fd);
      const resumed = await runCli(args);
      assert.equal(resumed.exitCode, 0, resumed.stderr);
      assert.match(resumed.stderr, /ckpt-000000004\.hpct.*(checksum|corrupt)/i);
      assert.match(resumed.stderr, /resuming from .*ckpt-000000002\.hpct: step 2/);
      assert.deepEqual(resumed.stdout.split('\n').filter((l) => / step \d\/4 /.test(l)).map((l) => /step (\d)\/4/.exec(l)![1]), ['3', '4']);
      for (const worker of workers) assert.equal(digestsOf(resumed.stdout).get(worker), uninterrupted, `worker ${worker}: the resumed run ended elsewhere`);
      // Not only the weights: the moving average and the optimizer's state (pulled from the server under ps) are those of the uninterrupted run.
      const again4 = await readCheckpoint(newest);
      for (const [name, values] of Object.entries(final.arrays)) assert.deepEqual(again4.arrays[name], values, `${name} differs from the uninterrupted run's`);
      assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1, 2, 3, 4], 'the CSV holds each step once');
      // Once more: the newest checkpoint is at the last step, so there is nothing left to train.
      const again = await runCli(args);
      assert.equal(again.exitCode, 0, again.stderr);
      assert.match(again.stderr, /at or past the last step \(4\): nothing to train/);
      assert.doesNotMatch(again.stdout, / step \d\/4 /);
      assert.equal(digestsOf(again.stdout).get(workers[1]!), uninterrupted);
    });
  }

  it('refuses to resume with another optimizer than the checkpoint\'s, saying which', async () => {
    const runDir = join(dir, 'run-other-optimizer');
    const common = ['train', '--data', dir, ...SMALL, '--batch-size', '2', '--run-dir', runDir, '--eval-batches', '0'];
    const first = await runCli([...common, '--steps', '1']);
    assert.equal(first.exitCode, 0, first.stderr);
    const result = await runCli([...common, '--steps', '2', '--optimizer', 'momentum']);
    assert.equal(result.exitCode, 1, result.stderr);
    assert.match(result.stderr, /holds the state of optimizer adamw, and this run trains with momentum/);
    assert.match(result.stderr, /hint: resume with --optimizer adamw/);
  });

  it('checks the validation split before the first step, not after the last', async () => {
    const broken = join(dir, 'broken-validation');
    cpSync(join(dir, 'train'), join(broken, 'train'), { recursive: true });
    cpSync(join(dir, 'train'), join(broken, 'validation'), { recursive: true });
    cpSync(join(dir, 'train', readdirSync(join(dir, 'train'))[0]!), join(broken, 'validation', 'n99999999'), { recursive: true });
    const result = await runCli(['train', '--data', broken, ...SMALL, '--batch-size', '2', '--steps', '50', '--eval-batches', '1', '--run-dir', join(dir, 'run-broken')]);
    assert.equal(result.exitCode, 1, result.stderr);
    assert.match(result.stderr, /n99999999 is not one of the 6 class folders/);
    assert.doesNotMatch(result.stdout, /^step /m, 'it trained before looking at the validation split');
  });

  for (const [strategy, extra, ranks] of [['allreduce', [], '2'], ['ps', ['--strategy', 'ps', '--num-ps', '1'], '3']] as const) {
    it(`stops every rank after a step whose loss is not finite, before applying it, with an error naming the step; no checkpoint of it (${strategy})`, async () => {
      const runDir = join(dir, `run-nan-${strategy}`);
      // A learning rate of 1e30 makes the weights ~1e30 after one Adam step: the second forward pass overflows.
      const result = await runCli(['launch', '-n', ranks, '--', 'train', '--data', dir, ...SMALL, '--batch-size', '2', '--steps', '5', '--learning-rate', '1e30',
        '--checkpoint-every', '1', '--eval-batches', '0', '--run-dir', runDir, ...extra]);
      assert.equal(result.exitCode, 1, result.stderr);
      assert.match(result.stderr, /step 2: the (loss averaged over the workers|global norm of the averaged gradients) is (NaN|-?Infinity)/);
      assert.match(result.stderr, /hint: nothing of this step was applied or checkpointed; lower --learning-rate/);
      assert.doesNotMatch(result.stdout, /weights sha256=/);
      assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), [1]);
      assert.ok(readdirSync(join(runDir, 'checkpoints')).every((name) => name === 'ckpt-000000001.hpct'), 'a checkpoint after the bad step');
    });
  }

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

  it('stops every worker before the first step when they disagree on what they worked out alone, naming the rank and what differs', async () => {
    const port = await getFreePortBlock(3);
    const env = { HPCTRAIN_SIZE: '2', HPCTRAIN_JOB_ID: `agree-${port}`, HPCTRAIN_PORT: String(port), HPCTRAIN_SECRET: 'agreement test' };
    // As if rank 1's node listed fewer steps: here, another --steps on its command line.
    const ranks = [0, 1].map((rank) => execa(process.execPath, [CLI, 'train', '--data', 'synthetic', ...SMALL, '--batch-size', '2', '--steps', rank === 0 ? '6' : '5',
      '--eval-batches', '0', '--run-dir', join(dir, 'run-agree')], { env: { ...env, HPCTRAIN_RANK: String(rank) }, reject: false, timeout: 120_000, all: true }));
    const [first, second] = await Promise.all(ranks);
    assert.equal(second!.exitCode, 1, second!.all);
    assert.match(second!.all ?? '', /error: rank 1 disagrees with the first worker \(rank 0\) on maxSteps: 5 here, 6 on the first worker/);
    assert.equal(first!.exitCode, 1, first!.all);
    assert.match(first!.all ?? '', /error: the workers disagree: rank\(s\) 1 differ from the first worker \(rank 0\)/);
    assert.doesNotMatch(first!.all ?? '', /^step 1\//m);
  });

  it('refuses a batch that cannot fit in the wasm heap, before the first step: on one thread, and a slice of it on each compute thread', async () => {
    const result = await runCli(['train', '--backend', 'wasm', '--image-size', '299', '--batch-size', '16', '--compute-threads', '1', '--steps', '1', '--run-dir', join(dir, 'run-big')]);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stderr, /hint: the largest batch that fits at 299x299 is 11/);
    assert.doesNotMatch(result.stdout, /^step /m);
    const threaded = await runCli(['train', '--backend', 'wasm', '--image-size', '299', '--batch-size', '32', '--compute-threads', '2', '--steps', '1', '--run-dir', join(dir, 'run-big')]);
    assert.equal(threaded.exitCode, 2, threaded.stderr);
    assert.match(threaded.stderr, /--batch-size 32 over 2 compute threads \(16 images on each\) .* per thread/);
    assert.match(threaded.stderr, /hint: the largest batch that fits at 299x299 is 22 with 2 compute threads/);
    assert.doesNotMatch(threaded.stdout, /^step /m);
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
