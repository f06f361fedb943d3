import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import type { ModelSummary } from '../../src/model/summary.js';

describe('hpctrain model summary', function () {
  this.timeout(120_000);

  it('prints the layers and the totals of Keras\'s InceptionV3', async () => {
    const result = await runCli(['model', 'summary']);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /^ conv2d_94 \(Conv2D\) +\(None, 8, 8, 192\) +393,216$/m);
    assert.match(result.stdout, /^ mixed10 \(Concatenate\) /m);
    assert.match(result.stdout, /\nTotal params: 23,851,784\nTrainable params: 23,817,352\nNon-trainable params: 34,432\n/);
    assert.equal(result.stderr, '', 'no tfjs banner or warning');
  });

  it('prints JSON for scripts, with the auxiliary head when asked', async () => {
    const result = await runCli(['model', 'summary', '--json', '--aux-logits', '--image-size', '75', '--num-classes', '10']);
    assert.equal(result.exitCode, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as ModelSummary;
    // 23,851,784 - 2,049,000 + 20,490 (a 10-class head) + 2,558,592 + 7,690 (the auxiliary head)
    assert.deepEqual(summary.totals, { total: 24_389_556, trainable: 24_353_332, nonTrainable: 36_224 });
    assert.deepEqual(summary.rows.find((r) => r.name === 'aux_logits'), { name: 'aux_logits', type: 'Dense', outputShape: '(None, 10)', params: 7690 });
  });

  it('takes its settings from HPCTRAIN_* variables too', async () => {
    const result = await runCli(['model', 'summary'], { env: { HPCTRAIN_AUX_LOGITS: '1', HPCTRAIN_NUM_CLASSES: '1000' } });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /\nTotal params: 27,179,376\nTrainable params: 27,143,152\nNon-trainable params: 36,224\n/);
  });

  it('answers bad input with a message and exit 2', async () => {
    for (const [args, message] of [
      [['model', 'summary', '--image-size', '74'], /--image-size=74 is below the minimum 75/],
      [['model', 'summary', '--num-classes', '0'], /--num-classes=0 is below the minimum 1/],
      [['model'], /model needs a subcommand/],
      [['model', 'show'], /unknown model subcommand "show"/],
    ] as const) {
      const result = await runCli([...args]);
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'stack trace');
    }
  });

  it('documents every option in --help', async () => {
    const result = await runCli(['model', '--help']);
    assert.equal(result.exitCode, 0);
    for (const flag of ['--image-size', '--num-classes', '--aux-logits', '--json', 'HPCTRAIN_IMAGE_SIZE']) assert.ok(result.stdout.includes(flag), flag);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /^  model +build Inception-V3/m);
  });
});
