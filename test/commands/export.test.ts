// `hpctrain export` and `hpctrain predict` as real processes on a real run: a tiny training run
// (with the auxiliary head, which is not exported), its checkpoint exported, the export loaded in a
// fresh process by plain TensorFlow.js and compared with what hpctrain computes for the same
// checkpoint on the images its evaluation decodes; then `hpctrain predict` on the image files.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import sharp from 'sharp';
import { tf } from '../../src/backend/tf.js';
import { readCheckpoint, writeCheckpoint, type CheckpointState } from '../../src/checkpoint/checkpoint.js';
import { shardExamples } from '../../src/data/shard.js';
import { openInput } from '../../src/data/input.js';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';
import { parameterLayout, readParameters, writeParameters } from '../../src/compute/parameters.js';
import { runCli } from '../helpers/cli.js';
import { seededRandom } from '../helpers/random.js';
import { CORRUPT_BYTES, makeTempDir, removeDir } from '../data/helpers.js';
import { useCpuBackend } from '../model/cpu-backend.js';

const PLAIN_TFJS = fileURLToPath(new URL('./plain-tfjs-predict.js', import.meta.url));
const SIZE = 75;
const CLASSES = Array.from({ length: 6 }, (_, c) => `n0${1440764 + c * 1111}`);
const TOLERANCE = 1e-4;
/** wasm against cpu: measured up to 1.5e-4 on this fixture (float32 sums in another order, through 94 batch norms). */
const CROSS_BACKEND_TOLERANCE = 1e-3;

/**
 * Image `variant` of class c: the class's colour, stripes at the class's angle and seeded noise, at
 * an odd size of its own, so that the central crop and the resize both change what the model sees.
 */
async function classImage(c: number, variant: number, format: 'jpeg' | 'png'): Promise<Buffer> {
  const width = 91 + 7 * c + 3 * variant;
  const height = 67 + 5 * c;
  const random = seededRandom(100 * c + variant + 1);
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const stripe = Math.sin((x * Math.cos(c) + y * Math.sin(c)) / 4) > 0 ? 1 : 0;
      for (let k = 0; k < 3; k++) raw[(y * width + x) * 3 + k] = Math.round(40 + 120 * stripe * (((c + k) % 3) / 2) + 90 * random());
    }
  }
  const image = sharp(raw, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 95 }).toBuffer();
}

type Meta = { imageSize: number; numClasses: number; auxLogits: boolean; seed: number };

function buildAsTrained(meta: Meta, values: Float32Array) {
  const model = buildInceptionV3({ imageSize: meta.imageSize, numClasses: meta.numClasses, auxLogits: meta.auxLogits, seed: meta.seed });
  writeParameters(model, parameterLayout(model), values);
  return model;
}

/**
 * The parameters with every batch norm's moving mean and variance set to the statistics of its
 * input on `images`, as a long run leaves them. A two-step run's are still about 0 and 1 (they move
 * 1% a step), with which the activations fade layer after layer and every image gets about the
 * same probabilities, from the biases: an export with its trunk's weights mixed up would match too.
 */
function calibrate(meta: Meta, values: Float32Array, images: Float32Array, count: number): Float32Array {
  const model = buildAsTrained(meta, values);
  try {
    for (const layer of model.layers) if (layer.getClassName() === 'ScalelessBatchNorm') (layer as unknown as { momentum: number }).momentum = 0;
    tf.tidy(() => {
      model.apply(tf.tensor4d(images, [count, SIZE, SIZE, 3]), { training: true });
    });
    const calibrated = new Float32Array(values.length);
    readParameters(model, parameterLayout(model), calibrated);
    const mean = model.getLayer('batch_normalization_50').getWeights()[1]!.dataSync();
    assert.ok(mean.some((m) => Math.abs(m) > 0.05), 'the moving means did not move: did ScalelessBatchNorm rename its momentum?');
    return calibrated;
  } finally {
    model.dispose();
  }
}

/** What hpctrain computes: its own model with the checkpoint's parameters, in inference mode, softmax of 'predictions'. */
function hpctrainProbabilities(meta: Meta, values: Float32Array, images: Float32Array, count: number): number[][] {
  const model = buildAsTrained(meta, values);
  try {
    return tf.tidy(() => {
      const outputs = model.apply(tf.tensor4d(images, [count, SIZE, SIZE, 3]), { training: false });
      return tf.softmax((Array.isArray(outputs) ? outputs[0]! : outputs) as tf.Tensor2D).arraySync();
    });
  } finally {
    model.dispose();
  }
}

function top5(row: readonly number[]): number[] {
  return row.map((_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b).slice(0, 5);
}

/**
 * The classes come in the same order wherever the reference tells them apart by more than `gap`:
 * two probabilities closer than the tolerance may swap without either side being wrong.
 */
function assertSameOrder(actual: readonly number[], expected: readonly number[], gap: number, what: string): void {
  for (let a = 0; a < expected.length; a++) {
    for (let b = a + 1; b < expected.length; b++) {
      if (Math.abs(expected[a]! - expected[b]!) <= gap) continue;
      assert.equal(Math.sign(actual[a]! - actual[b]!), Math.sign(expected[a]! - expected[b]!), `${what}: classes ${a} and ${b} swapped\n  got      ${actual.join(' ')}\n  expected ${expected.join(' ')}`);
    }
  }
}

function assertClose(actual: readonly (readonly number[])[], expected: readonly (readonly number[])[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  expected.forEach((row, i) => {
    const worst = Math.max(...row.map((p, j) => Math.abs(p - actual[i]![j]!)));
    assert.ok(worst <= TOLERANCE, `${what}, image ${i}: off by ${worst}\n  got      ${actual[i]!.join(' ')}\n  expected ${row.join(' ')}`);
    assertSameOrder(actual[i]!, row, 2 * TOLERANCE, `${what}, image ${i}`);
  });
}

/** The lines `hpctrain predict` prints: an image, then "  1. label  probability" per class. */
function parsePredictText(stdout: string): { image: string; top: { label: string; probability: number }[] }[] {
  const blocks: { image: string; top: { label: string; probability: number }[] }[] = [];
  for (const line of stdout.split('\n').filter(Boolean)) {
    const row = /^  (\d+)\. (\S+) +(\d\.\d{6})$/.exec(line);
    if (!row) blocks.push({ image: line, top: [] });
    else blocks[blocks.length - 1]!.top.push({ label: row[2]!, probability: Number(row[3]) });
  }
  return blocks;
}

function assertUserError(result: { exitCode?: number; stderr: string }, exitCode: number, message: RegExp): void {
  assert.equal(result.exitCode, exitCode, result.stderr);
  assert.match(result.stderr, message);
  assert.match(result.stderr, /: hint: \S/, 'a hint');
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace');
}

describe('hpctrain export and predict (real processes)', function () {
  this.timeout(600_000);
  useCpuBackend();

  let dir: string;
  /** The validation images in the order hpctrain's evaluation reads them (class folders sorted, then file names). */
  const imagePaths: string[] = [];
  let evalImages: Float32Array;
  let checkpoint: CheckpointState;
  let meta: Meta;
  const reference: { ema?: number[][]; trained?: number[][] } = {};
  const exported = { auto: '', ema: '', trained: '' };
  let autoStdout = '';

  async function plainTfjs(modelDir: string): Promise<{ probabilities: number[][]; layerClasses: string[]; inputShape: unknown[]; registered: string[] }> {
    const imagesFile = join(dir, 'eval-images.f32');
    writeFileSync(imagesFile, evalImages);
    const outputFile = join(dir, `plain-${Math.random().toString(36).slice(2)}.json`);
    const result = await execa(process.execPath, [PLAIN_TFJS, modelDir, imagesFile, String(imagePaths.length), outputFile], { reject: false, timeout: 120_000 });
    assert.equal(result.exitCode, 0, result.stderr);
    return JSON.parse(readFileSync(outputFile, 'utf8'));
  }

  before(async () => {
    dir = makeTempDir('hpctrain-export-');
    for (const [c, wnid] of CLASSES.entries()) {
      for (const split of ['train', 'validation']) mkdirSync(join(dir, split, wnid), { recursive: true });
      for (const variant of [0, 1]) {
        const png = c === 2 && variant === 1;
        const path = join(dir, 'validation', wnid, `${wnid}_${variant}.${png ? 'png' : 'JPEG'}`);
        writeFileSync(path, await classImage(c, variant, png ? 'png' : 'jpeg'));
        imagePaths.push(path);
      }
    }
    cpSync(join(dir, 'validation'), join(dir, 'train'), { recursive: true });

    // The paper's recipe keeps a moving average, so that the checkpoint holds both sets of weights to export.
    const train = await runCli(['train', '--data', dir, '--image-size', String(SIZE), '--warmup-epochs', '0', '--batch-size', '4', '--steps', '2',
      '--aux-logits', '--recipe', 'inception-paper', '--eval-batches', '0', '--run-dir', join(dir, 'run')]);
    assert.equal(train.exitCode, 0, train.stderr);
    checkpoint = await readCheckpoint(join(dir, 'run', 'checkpoints', 'ckpt-000000002.hpct'));
    meta = checkpoint.meta as unknown as Meta;
    assert.equal(meta.auxLogits, true);
    assert.ok(checkpoint.arrays.ema, 'the run keeps a moving average');

    const input = await openInput({ data: dir, split: 'validation', batchSize: imagePaths.length, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 0 });
    try {
      // Evaluation reads its one fixed order; the images are put back in file order (imagePaths').
      const order = shardExamples({ count: imagePaths.length, rank: 0, size: 1, seed: 1, epoch: 0, mode: 'eval' });
      for await (const batch of input.epoch(0)) {
        assert.equal(batch.batchSize, imagePaths.length);
        assert.deepEqual([...batch.labels], [...order].map((index) => Math.floor(index / 2)), 'evaluation reads the examples in its order');
        const perImage = batch.images.length / batch.batchSize;
        evalImages = new Float32Array(batch.images.length);
        order.forEach((index, i) => evalImages!.set(batch.images.subarray(i * perImage, (i + 1) * perImage), index * perImage));
      }
    } finally {
      await input.close();
    }

    // The run's checkpoint with realistic batch norm statistics (see calibrate), every other array as it was.
    const count = imagePaths.length;
    const arrays = { ...checkpoint.arrays, weights: calibrate(meta, checkpoint.arrays.weights!, evalImages, count), ema: calibrate(meta, checkpoint.arrays.ema!, evalImages, count) };
    checkpoint = { ...checkpoint, arrays };
    await writeCheckpoint(join(dir, 'calibrated', 'checkpoints'), checkpoint, { keep: 1 });
    reference.ema = hpctrainProbabilities(meta, arrays.ema, evalImages, count);
    reference.trained = hpctrainProbabilities(meta, arrays.weights, evalImages, count);

    for (const choice of ['auto', 'ema', 'trained'] as const) {
      exported[choice] = join(dir, `export-${choice}`);
      const args = ['export', join(dir, 'calibrated'), '--output', exported[choice], ...(choice === 'auto' ? [] : ['--weights', choice])];
      const result = await runCli(args);
      assert.equal(result.exitCode, 0, result.stderr);
      if (choice === 'auto') autoStdout = result.stdout;
    }
  });
  after(() => removeDir(dir));

  it('has a fixture whose images get clearly different probabilities, each with a clear first class', () => {
    // Orders are compared only where the reference's probabilities differ by more than the tolerance;
    // each image's first class must stand out, so that the comparisons cover the classes that matter.
    for (const [rows, gap] of [[reference.ema!, CROSS_BACKEND_TOLERANCE], [reference.trained!, 3 * TOLERANCE]] as const) {
      for (const row of rows) {
        const sorted = [...row].sort((a, b) => b - a);
        assert.ok(sorted[0]! - sorted[1]! > gap, `no clear first class in ${row.join(' ')}`);
      }
      const spread = Math.max(...rows.map((row) => Math.max(...row.map((p, j) => Math.abs(p - rows[0]![j]!)))));
      assert.ok(spread > 0.05, `the images' probabilities differ by ${spread} at most: the model hardly looks at them`);
    }
  });

  it('writes model.json and weights.bin as tfjs saves a layers model: standard layers named as Keras names them, a softmax, no auxiliary head', () => {
    assert.match(autoStdout, /^checkpoint .*ckpt-000000002\.hpct: step 2, Inception-V3 75x75, 6 classes, auxiliary head \(not exported\)$/m);
    assert.match(autoStdout, /^weights: the moving average of the weights \(auto: the checkpoint has one; --weights trained for the trained weights\)$/m);
    assert.match(autoStdout, /^wrote .*export-auto: model\.json, weights\.bin \([\d.]+ MB\), labels\.txt \(6 classes\), preprocessing\.json$/m);
    const json = JSON.parse(readFileSync(join(exported.auto, 'model.json'), 'utf8'));
    assert.deepEqual(Object.keys(json), ['modelTopology', 'weightsManifest', 'format', 'generatedBy', 'convertedBy', 'userDefinedMetadata']);
    assert.equal(json.format, 'layers-model');
    assert.match(json.generatedBy, /^TensorFlow\.js tfjs-layers v4\.\d+\.\d+$/);
    assert.equal(json.convertedBy, null);
    assert.equal(json.userDefinedMetadata.hpctrain.weights, 'ema');
    assert.equal(json.weightsManifest.length, 1);
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    const specs = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string }[];
    const bytes = specs.reduce((sum, spec) => sum + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(readFileSync(join(exported.auto, 'weights.bin')).length, bytes);
    assert.ok(specs.every((spec) => spec.dtype === 'float32' && !spec.name.startsWith('aux_')));

    const layers = json.modelTopology.config.layers as { name: string; class_name: string; config: Record<string, unknown> }[];
    assert.equal(json.modelTopology.class_name, 'Model');
    assert.equal(layers.length, 313, "Keras's InceptionV3 has 313 layers");
    assert.deepEqual([...new Set(layers.map((l) => l.class_name))].sort(),
      ['Activation', 'AveragePooling2D', 'BatchNormalization', 'Concatenate', 'Conv2D', 'Dense', 'GlobalAveragePooling2D', 'InputLayer', 'MaxPooling2D']);
    for (let i = 1; i <= 94; i++) {
      const conv = layers.find((l) => l.name === `conv2d_${i}`)!;
      const bn = layers.find((l) => l.name === `batch_normalization_${i}`)!;
      const relu = layers.find((l) => l.name === `activation_${i}`)!;
      assert.equal(conv.class_name, 'Conv2D');
      assert.equal(conv.config.use_bias, false);
      assert.deepEqual([bn.class_name, bn.config.scale, bn.config.center, bn.config.epsilon, bn.config.momentum], ['BatchNormalization', false, true, 1e-3, 0.99]);
      assert.deepEqual([relu.class_name, relu.config.activation], ['Activation', 'relu']);
    }
    for (let i = 0; i <= 10; i++) assert.equal(layers.find((l) => l.name === `mixed${i}`)?.class_name, 'Concatenate');
    assert.equal(layers.find((l) => l.name === 'avg_pool')?.class_name, 'GlobalAveragePooling2D');
    assert.deepEqual(layers.find((l) => l.name === 'predictions')?.config.activation, 'softmax');
    assert.ok(!layers.some((l) => l.name.startsWith('aux_')));
    assert.deepEqual(json.modelTopology.config.output_layers, [['predictions', 0, 0]]);

    assert.equal(readFileSync(join(exported.auto, 'labels.txt'), 'utf8'), CLASSES.map((c) => `${c}\n`).join(''));
    const preprocessing = JSON.parse(readFileSync(join(exported.auto, 'preprocessing.json'), 'utf8'));
    assert.equal(preprocessing.imageSize, SIZE);
    assert.equal(preprocessing.preprocessing.centralCropFraction, 0.875);
    assert.deepEqual(preprocessing.input.shape, [null, SIZE, SIZE, 3]);
    assert.deepEqual(preprocessing.input.range, [-1, 1]);
  });

  it('loads in a fresh process with plain tfjs alone and gives the probabilities hpctrain computes for the checkpoint', async () => {
    for (const choice of ['ema', 'trained'] as const) {
      const plain = await plainTfjs(exported[choice]);
      assert.ok(!plain.registered.includes('ScalelessBatchNorm'), 'the plain process must not know hpctrain\'s layers');
      assert.ok(plain.registered.includes('BatchNormalization'));
      assert.deepEqual(plain.inputShape, [null, SIZE, SIZE, 3]);
      assertClose(plain.probabilities, reference[choice]!, `--weights ${choice}`);
    }
  });

  it('--weights ema and trained give different models; auto is ema when the checkpoint has one', async () => {
    const weights = (choice: keyof typeof exported) => readFileSync(join(exported[choice], 'weights.bin'));
    assert.ok(!weights('ema').equals(weights('trained')));
    assert.ok(weights('auto').equals(weights('ema')));
    const differ = Math.max(...reference.ema!.map((row, i) => Math.max(...row.map((p, j) => Math.abs(p - reference.trained![i]![j]!)))));
    assert.ok(differ > 10 * TOLERANCE, `ema and trained probabilities differ by ${differ} at most`);
  });

  it('hpctrain predict preprocesses the image files as the evaluation does and prints the same top classes and probabilities', async () => {
    // On cpu, the reference's backend: every probability to TOLERANCE, and --top clamped to the 6 classes.
    const json = await runCli(['predict', exported.trained, ...imagePaths, '--json', '--top', '10', '--backend', 'cpu']);
    assert.equal(json.exitCode, 0, json.stderr);
    const document = JSON.parse(json.stdout) as { backend: string; predictions: { image: string; top: { index: number; label: string; probability: number }[] }[] };
    assert.equal(document.backend, 'cpu');
    assert.deepEqual(document.predictions.map((p) => p.image), imagePaths);
    document.predictions.forEach((prediction, i) => {
      const expected = reference.trained![i]!;
      const byIndex = expected.map((_, c) => prediction.top.find((t) => t.index === c)!.probability);
      assert.deepEqual(prediction.top.map((t) => t.probability), [...byIndex].sort((a, b) => b - a), `${prediction.image}: not printed in order`);
      assertSameOrder(byIndex, expected, 2 * TOLERANCE, prediction.image);
      for (const t of prediction.top) {
        assert.equal(t.label, CLASSES[t.index]);
        assert.ok(Math.abs(t.probability - expected[t.index]!) <= TOLERANCE, `${prediction.image}: ${t.label} ${t.probability}, expected ${expected[t.index]}`);
      }
    });

    // On the backend hpctrain picks (wasm here), whose sums differ from cpu's in the last bits: the same
    // top 5, probabilities to CROSS_BACKEND_TOLERANCE.
    const text = await runCli(['predict', exported.ema, ...imagePaths]);
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stderr, /^backend wasm: chosen: /m);
    const blocks = parsePredictText(text.stdout);
    assert.deepEqual(blocks.map((b) => b.image), imagePaths);
    blocks.forEach((block, i) => {
      const reference5 = top5(reference.ema![i]!);
      assert.equal(block.top.length, 5);
      assert.equal(block.top[0]!.label, CLASSES[reference5[0]!], `${block.image}: first class`);
      block.top.forEach((t) => {
        const probability = reference.ema![i]![CLASSES.indexOf(t.label as (typeof CLASSES)[number])]!;
        assert.ok(Math.abs(t.probability - probability) <= CROSS_BACKEND_TOLERANCE, `${block.image}: ${t.label} ${t.probability}, expected ${probability}`);
      });
      // The one class left out of the top 5 is the reference's last, unless the last two are too close to tell apart.
      const left = CLASSES.find((c) => !block.top.some((t) => t.label === c))!;
      const sorted = [...reference.ema![i]!].sort((a, b) => b - a);
      if (sorted[4]! - sorted[5]! > 2 * CROSS_BACKEND_TOLERANCE) assert.equal(CLASSES.indexOf(left), top5([...reference.ema![i]!].map((p) => -p))[0], `${block.image}: left out`);
    });
  });

  it('--weights auto takes the trained weights of a checkpoint without a moving average, and says so; --weights ema refuses it', async () => {
    const { ema: _ema, ...arrays } = checkpoint.arrays;
    await writeCheckpoint(join(dir, 'no-ema', 'checkpoints'), { ...checkpoint, arrays }, { keep: 1 });
    const output = join(dir, 'export-no-ema');
    const auto = await runCli(['export', join(dir, 'no-ema'), '-o', output]);
    assert.equal(auto.exitCode, 0, auto.stderr);
    assert.match(auto.stdout, /^weights: the trained weights \(auto: the checkpoint has no moving average\)$/m);
    assert.ok(readFileSync(join(output, 'weights.bin')).equals(readFileSync(join(exported.trained, 'weights.bin'))));
    assertUserError(await runCli(['export', join(dir, 'no-ema'), '--output', output, '--weights', 'ema']), 1, /holds no moving average of the weights \("ema"\)/);
  });

  it('exports a checkpoint file given by name, and refuses one whose meta does not describe its variables', async () => {
    const file = join(dir, 'calibrated', 'checkpoints', 'ckpt-000000002.hpct');
    const byName = await runCli(['export', file, '--output', join(dir, 'export-file'), '--weights', 'ema']);
    assert.equal(byName.exitCode, 0, byName.stderr);
    assert.ok(readFileSync(join(dir, 'export-file', 'weights.bin')).equals(readFileSync(join(exported.ema, 'weights.bin'))));

    await writeCheckpoint(join(dir, 'wrong-meta'), { ...checkpoint, meta: { ...checkpoint.meta, auxLogits: false } }, { keep: 1 });
    assertUserError(await runCli(['export', join(dir, 'wrong-meta'), '--output', join(dir, 'export-wrong')]), 1,
      /does not hold the variables of the model its meta describes \(Inception-V3 75x75, 6 classes\): the layout digests differ/);
  });

  it('answers a missing or unusable run, checkpoint or option with a message and a hint', async () => {
    const notCheckpoint = join(dir, 'not-a-checkpoint.hpct');
    writeFileSync(notCheckpoint, CORRUPT_BYTES);
    mkdirSync(join(dir, 'empty-run'));
    for (const [args, status, message] of [
      [['export', join(dir, 'nowhere'), '--output', join(dir, 'x')], 1, /nowhere does not exist/],
      [['export', join(dir, 'empty-run'), '--output', join(dir, 'x')], 1, /no checkpoint in .*empty-run \(nor in .*empty-run\/checkpoints\)/],
      [['export', notCheckpoint, '--output', join(dir, 'x')], 1, /not an hpctrain checkpoint/],
      [['export', join(dir, 'calibrated')], 2, /export needs --output DIR/],
      [['export', '--output', join(dir, 'x')], 2, /export needs a run directory or a checkpoint file/],
    ] as const) {
      assertUserError(await runCli([...args]), status, message);
    }
    const badChoice = await runCli(['export', join(dir, 'calibrated'), '--output', join(dir, 'x'), '--weights', 'best']);
    assert.equal(badChoice.exitCode, 2);
    assert.match(badChoice.stderr, /--weights="best" is not one of auto, ema, trained/);
  });

  it('answers a missing or damaged model directory, or an unreadable image, with a message and a hint', async () => {
    const damaged = (name: string, change: (modelDir: string) => void): string => {
      const copy = join(dir, name);
      cpSync(exported.ema, copy, { recursive: true });
      change(copy);
      return copy;
    };
    const image = imagePaths[0]!;
    const corrupt = join(dir, 'corrupt.JPEG');
    writeFileSync(corrupt, CORRUPT_BYTES);
    const cases: [string[], RegExp][] = [
      [['predict', join(dir, 'nowhere'), image], /model directory .*nowhere does not exist/],
      [['predict', join(dir, 'run'), image], /run holds no model\.json/],
      [['predict', damaged('bad-json', (d) => writeFileSync(join(d, 'model.json'), '{"modelTopology": {')), image], /model\.json is not a TensorFlow\.js layers model: not JSON/],
      [['predict', damaged('short-weights', (d) => truncateSync(join(d, 'weights.bin'), 1000)), image], /hold 1000 bytes; its manifest describes \d+/],
      [['predict', damaged('no-weights', (d) => removeDir(join(d, 'weights.bin'))), image], /could not read .*weights\.bin, a weight file that .*model\.json names: does not exist/],
      [['predict', damaged('custom-layer', (d) => writeFileSync(join(d, 'model.json'), readFileSync(join(d, 'model.json'), 'utf8').replace('"class_name":"BatchNormalization"', '"class_name":"ScalelessBatchNorm"'))), image],
        /the model in .*custom-layer could not be loaded: .*ScalelessBatchNorm/],
      [['predict', damaged('no-labels', (d) => removeDir(join(d, 'labels.txt'))), image], /could not read the class names, .*labels\.txt: does not exist/],
      [['predict', damaged('short-labels', (d) => writeFileSync(join(d, 'labels.txt'), CLASSES.slice(1).join('\n'))), image], /labels\.txt in .* names 5 classes; the model has 6/],
      [['predict', exported.ema, join(dir, 'missing.JPEG')], /image .*missing\.JPEG does not exist/],
      [['predict', exported.ema, image, corrupt], /image .*corrupt\.JPEG cannot be decoded: /],
    ];
    for (const [args, message] of cases) assertUserError(await runCli(args), 1, message);
    for (const [args, message] of [[['predict'], /predict needs a model directory and images/], [['predict', exported.ema], /predict needs images to classify/]] as const) {
      assertUserError(await runCli([...args]), 2, message);
    }
  });

  it('documents both commands in --help and in the command list', async () => {
    const exportHelp = await runCli(['export', '--help']);
    assert.equal(exportHelp.exitCode, 0);
    for (const flag of ['--output', '--weights', 'auto|ema|trained', 'RUN_DIR|CHECKPOINT']) assert.ok(exportHelp.stdout.includes(flag), flag);
    const predictHelp = await runCli(['predict', '--help']);
    assert.equal(predictHelp.exitCode, 0);
    for (const flag of ['--top', '--json', '--backend', 'HPCTRAIN_BACKEND', 'MODEL_DIR IMAGE...']) assert.ok(predictHelp.stdout.includes(flag), flag);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /^ {2}export {2,}/m);
    assert.match(top.stdout, /^ {2}predict {2,}/m);
  });
});
