// `hpctrain train --compute-threads` as real processes, under each strategy: ranks of 2 compute
// threads take the step that ranks of one thread take (the same loss and gradient norm from the
// same weights), every worker and every replica ends with the same weights, and a threaded run
// resumes from its checkpoint to where it would have ended without the interruption.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { readStepCsv } from '../../src/metrics/csv.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir, removeDir } from '../data/helpers.js';

const SMALL = ['--data', 'synthetic', '--image-size', '75', '--num-classes', '4', '--batch-size', '4', '--warmup-epochs', '0'];

function digestsOf(stdout: string): string[] {
  return [...stdout.matchAll(/^\[rank \d\] weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[1]!);
}

describe('hpctrain train --compute-threads (real processes)', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = makeTempDir();
  });
  after(() => removeDir(dir));

  for (const [strategy, ranks, extra] of [['allreduce', '2', []], ['ps', '3', ['--strategy', 'ps', '--num-ps', '1', '--recipe', 'inception-paper']]] as const) {
    it(`ranks of 2 compute threads take one thread's step, end alike, and resume where they would have ended (${strategy})`, async () => {
      const run = (name: string, threads: string, steps: string) => runCli(['launch', '-n', ranks, '--', 'train', ...SMALL, ...extra,
        '--compute-threads', threads, '--steps', steps, '--checkpoint-every', '2', '--run-dir', join(dir, `${strategy}-${name}`)]);
      const [one, whole] = [await run('one', '1', '1'), await run('two', '2', '4')];
      assert.equal(one.exitCode, 0, one.stderr);
      assert.equal(whole.exitCode, 0, whole.stderr);
      assert.match(whole.stderr, /core\(s\) \(.*\): 2 compute thread\(s\), 2 images or fewer each/);
      assert.match(whole.stderr, /steps on wasm with 2 compute threads/);
      assert.match(whole.stderr, /the replicas of all 2 compute threads hold these weights, bit for bit/);
      const [first] = readStepCsv(join(dir, `${strategy}-one`, 'metrics.csv'));
      const [threaded] = readStepCsv(join(dir, `${strategy}-two`, 'metrics.csv'));
      // From the same seeded weights: the same loss, and gradients whose norm agrees to float32 sums in another order.
      assert.ok(Math.abs(threaded!.loss - first!.loss) <= 1e-6 * first!.loss, `loss ${threaded!.loss} against ${first!.loss}`);
      assert.ok(Math.abs(threaded!.gradNorm - first!.gradNorm) <= 1e-5 * first!.gradNorm, `gradient norm ${threaded!.gradNorm} against ${first!.gradNorm}`);
      const digests = digestsOf(whole.stdout);
      assert.equal(digests.length, 2, whole.stdout);
      assert.equal(new Set(digests).size, 1, whole.stdout);
      // Interrupted after step 2: the newest checkpoint is gone, the run resumes from step 2.
      rmSync(join(dir, `${strategy}-two`, 'checkpoints', 'ckpt-000000004.hpct'));
      const resumed = await run('two', '2', '4');
      assert.equal(resumed.exitCode, 0, resumed.stderr);
      assert.match(resumed.stderr, /resuming from .*ckpt-000000002\.hpct: step 2/);
      assert.deepEqual(new Set(digestsOf(resumed.stdout)), new Set(digests), 'the resumed run ended elsewhere');
    });
  }
});
