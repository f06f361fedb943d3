// hpctrain learns: the production path end to end (2 ranks through the local launcher, the ring
// allreduce, the default recipe's optimizer on the flat vector, evaluation in inference mode on a
// held-out split) on a generated dataset with structure to learn: four textures (stripes either
// way, a checkerboard, dots), in random colours that carry no class, so that only the pattern
// tells the class. Not random labels: a loss that falls on those proves nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeShapesDataset } from '../../src/data/shapes.js';
import { EVAL_TABLE, readRecordCsv, readStepCsv } from '../../src/metrics/csv.js';
import { makeTempDir, removeDir } from '../data/helpers.js';
import { runCli } from '../helpers/cli.js';

const CLASSES = ['horizontal-stripes', 'vertical-stripes', 'checkerboard', 'dots'] as const;
const CHANCE = 1 / CLASSES.length;

describe('learning (real processes, the default recipe)', function () {
  // About 3-4 minutes on 2 shared cores: 96 steps of a global batch of 32 at 75x75.
  this.timeout(900_000);
  let dir: string;
  before(async () => {
    dir = makeTempDir('hpctrain-learning-');
    await writeShapesDataset({ root: join(dir, 'data'), classes: CLASSES, trainPerClass: 96, validationPerClass: 24, imageSize: 96, seed: 1 });
  });
  after(() => removeDir(dir));

  it('2 ranks through the launcher reach a held-out top-1 well above chance on four textures', async () => {
    const runDir = join(dir, 'run');
    const result = await runCli(['launch', '-n', '2', '--', 'train', '--data', join(dir, 'data'), '--image-size', '75', '--batch-size', '16', '--epochs', '8',
      '--eval-every', '2', '--log-every', '12', '--run-dir', runDir], { timeoutMs: 880_000 });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /recipe default: adamw/);
    const evaluations = readRecordCsv(join(runDir, 'eval.csv'), EVAL_TABLE);
    assert.deepEqual(evaluations.map((e) => `${e.step}:${e.weights}:${e.images}`), ['24:trained:96', '48:trained:96', '72:trained:96', '96:trained:96']);
    const last = evaluations.at(-1)!;
    assert.ok(last.top1 >= 0.45, `held-out top-1 ${last.top1} after 8 epochs (chance ${CHANCE}); all: ${evaluations.map((e) => e.top1.toFixed(3)).join(' ')}`);
    assert.ok(last.loss < Math.log(CLASSES.length), `held-out loss ${last.loss}, not below chance's ${Math.log(CLASSES.length)}`);
    const steps = readStepCsv(join(runDir, 'metrics.csv'));
    const mean = (rows: typeof steps) => rows.reduce((sum, r) => sum + r.loss, 0) / rows.length;
    assert.ok(mean(steps.slice(-12)) < mean(steps.slice(0, 12)) - 0.2, `training loss ${mean(steps.slice(0, 12))} -> ${mean(steps.slice(-12))}`);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as { eval: { trained: { top1: number } } };
    assert.equal(summary.eval.trained.top1, last.top1);
    const digests = [...result.stdout.matchAll(/^\[rank (\d)\] weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[2]);
    assert.equal(digests.length, 2);
    assert.equal(new Set(digests).size, 1, 'the replicas differ');
  });
});
