import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../data/helpers.js';
import { runCli } from '../helpers/cli.js';

describe('hpctrain dataset', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  beforeEach(() => {
    dir = makeTempDir('hpctrain-dataset-');
  });
  afterEach(() => removeDir(dir));

  it('writes the shapes dataset, says what it wrote and what to run next', async () => {
    const root = join(dir!, 'shapes');
    const args = ['dataset', 'shapes', root, '--classes', '3', '--train-per-class', '4', '--validation-per-class', '2', '--image-size', '40', '--seed', '5'];
    const result = await runCli(args);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^wrote 12 training images to ${root}/train and 6 validation images to ${root}/validation \\(40x40 JPEG, seed 5\\)`));
    assert.match(result.stdout, /^classes \(3\): circle, square, triangle$/m);
    assert.ok(result.stdout.includes(`hpctrain launch -n 2 -- train --data ${root}\n`), result.stdout);
    assert.deepEqual(readdirSync(join(root, 'train')).sort(), ['circle', 'square', 'triangle']);
    assert.deepEqual(readdirSync(join(root, 'validation', 'square')).sort(), ['square_0.JPEG', 'square_1.JPEG']);

    // The same command elsewhere gives the same bytes.
    const again = join(dir!, 'again');
    assert.equal((await runCli(args.map((a) => (a === root ? again : a)))).exitCode, 0);
    assert.ok(readFileSync(join(root, 'train', 'triangle', 'triangle_3.JPEG')).equals(readFileSync(join(again, 'train', 'triangle', 'triangle_3.JPEG'))));

    // Classes by name: those, and a class's images are the same whichever others are asked for.
    const named = join(dir!, 'named');
    const byName = await runCli(['dataset', 'shapes', named, '--classes', 'dots,triangle', ...args.slice(5)]);
    assert.equal(byName.exitCode, 0, byName.stderr);
    assert.match(byName.stdout, /^classes \(2\): dots, triangle$/m);
    assert.deepEqual(readdirSync(join(named, 'train')).sort(), ['dots', 'triangle']);
    assert.ok(readFileSync(join(root, 'train', 'triangle', 'triangle_3.JPEG')).equals(readFileSync(join(named, 'train', 'triangle', 'triangle_3.JPEG'))));
  });

  it('refuses a directory that already holds a split, with exit 1 and a hint', async () => {
    mkdirSync(join(dir!, 'validation'));
    const result = await runCli(['dataset', 'shapes', dir!, '--classes', '2', '--train-per-class', '1', '--validation-per-class', '1']);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /hpctrain dataset: error: .* already holds validation\/: the shapes dataset is not written over existing data/);
    assert.match(result.stderr, /hpctrain dataset: hint: give another directory, or remove what is there first/);
    assert.deepEqual(readdirSync(dir!), ['validation']);
  });

  it('answers bad arguments with a message that quotes them and exit 2', async () => {
    const root = join(dir!, 'never');
    for (const [args, message] of [
      [['dataset', 'shapes', root, '--classes', '11'], /--classes 11 is not in 2\.\.10/],
      [['dataset', 'shapes', root, '--classes', '1'], /--classes 1 is not in 2\.\.10/],
      [['dataset', 'shapes', root, '--classes', 'dots'], /--classes dots names fewer than 2 classes/],
      [['dataset', 'shapes', root, '--classes', 'dots,hexagon'], /"hexagon" is not a class of the shapes dataset/],
      [['dataset', 'shapes', root, '--classes', 'dots,dots'], /the classes dots,dots are not distinct names/],
      [['dataset', 'shapes', root, '--train-per-class', '0'], /--train-per-class=0 is below the minimum 1/],
      [['dataset', 'shapes', root, '--image-size', 'big'], /--image-size="big" is not an integer/],
      [['dataset', 'shapes', root, '--seed=-1'], /--seed=-1 is below the minimum 0/],
      [['dataset', 'shapes'], /dataset shapes needs the directory to write to/],
      [['dataset', 'circles', root], /unknown dataset subcommand "circles"/],
      [['dataset', 'shapes', root, 'extra'], /unexpected argument "extra"/],
    ] as const) {
      const result = await runCli([...args]);
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'stack trace');
    }
    assert.deepEqual(readdirSync(dir!), [], 'nothing written');
  });

  it('lists its options in --help, and is listed by hpctrain --help', async () => {
    const help = await runCli(['dataset', '--help']);
    assert.equal(help.exitCode, 0);
    for (const flag of ['--classes C|NAMES', '--train-per-class N', '--validation-per-class N', '--image-size PIXELS', '--seed SEED']) assert.ok(help.stdout.includes(flag), flag);
    assert.match(help.stdout, /sbatch --export=ALL,HPCTRAIN_DATA=\/scratch\/shapes slurm\/train\.slurm/);
    assert.match((await runCli(['--help'])).stdout, /^ {2}dataset {2,}write a generated dataset/m);
  });
});
