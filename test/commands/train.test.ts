import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { makeTempDir, removeDir, writeImagenetTrain } from '../data/helpers.js';

describe('hpctrain train (real process)', function () {
  this.timeout(300_000);
  let dir: string | undefined;
  after(() => removeDir(dir));

  it('trains on an ILSVRC2012-layout directory, logging the backend choice and one line per step', async () => {
    dir = makeTempDir();
    await writeImagenetTrain(dir, 3, 4, [96, 96]);
    const result = await runCli(['train', '--data', dir, '--image-size', '75', '--batch-size', '4', '--steps', '3']);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /backend wasm: chosen: @tensorflow\/tfjs-backend-wasm/);
    assert.match(result.stderr, /train: ImageNet folders train\/ in .* \(class folders\): 12 images, 3 classes; rank 0 of 1 reads 3 batches of 4 per epoch/);
    assert.match(result.stderr, /Inception-V3 75x75, 3 classes, [\d,]+ parameters; batch 4, learning rate 0\.0001125, 3 steps on wasm/);
    const steps = result.stdout.split('\n').filter((line) => line.startsWith('step '));
    assert.equal(steps.length, 3);
    assert.match(steps[2]!, /^step 3\/3 epoch \d+ loss=\d+\.\d{4} top1=\d\.\d{3} lr=[\d.e-]+ grad_norm=\d+\.\d{3} img_per_s=\d+\.\d\d data_ms=\d+ compute_ms=\d+$/);
    assert.match(result.stderr, /schedule: warm-up over 2 epoch\(s\) of 3 steps, then x0\.94 every 2 epochs; gradients clipped to global norm 2/);
    assert.match(result.stdout, /^trained 3 steps in [\d.]+ s: [\d.]+ images\/s, mean loss [\d.]+$/m);
  });

  it('trains on 3 ranks through the local launcher, each its shard, ending with the same weights on every rank', async () => {
    dir ??= makeTempDir();
    await writeImagenetTrain(dir, 3, 4, [96, 96]);
    const result = await runCli(['launch', '-n', '3', '--', 'train', '--data', dir, '--image-size', '75', '--batch-size', '2', '--steps', '3']);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /\[rank 0\] .*rank 0 of 3 reads 2 batches of 2 per epoch/);
    assert.match(result.stderr, /batch 2 per rank x 3 ranks, learning rate 0\.0001687\d*, 3 steps on wasm/);
    const steps = result.stdout.split('\n').filter((line) => / step \d+\/3 /.test(line));
    assert.equal(steps.length, 3, result.stdout);
    for (const line of steps) assert.match(line, /^\[rank 0\] step \d\/3 epoch \d+ loss=\d+\.\d{4} .* comm_ms=\d+$/);
    const digests = [...result.stdout.matchAll(/^\[rank (\d)\] weights sha256=([0-9a-f]{64})$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(digests.map(([rank]) => rank).sort(), ['0', '1', '2']);
    assert.equal(new Set(digests.map(([, digest]) => digest)).size, 1, result.stdout);
  });

  it('refuses a batch that cannot fit in the wasm heap, before the first step', async () => {
    const result = await runCli(['train', '--backend', 'wasm', '--image-size', '299', '--batch-size', '16', '--steps', '1']);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stderr, /hint: the largest batch that fits at 299x299 is 11/);
    assert.doesNotMatch(result.stdout, /^step /m);
  });
});
