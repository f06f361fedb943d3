import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { openInput } from '../../src/data/input.js';
import { writeShapesDataset, type ShapesOptions } from '../../src/data/shapes.js';
import { drawShapeSvg, luma, SHAPE_CLASSES } from '../../src/data/shapes-svg.js';
import { createRandom } from '../../src/data/random.js';
import { DataError, OptionsError } from '../../src/errors.js';
import { makeTempDir, removeDir } from './helpers.js';

/** Every file under `dir`, relative to it, in sorted order. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Mean R, G, B of an image, 0..255. */
async function meanColour(path: string): Promise<number[]> {
  const data = await sharp(path).raw().toBuffer();
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i++) sums[i % 3]! += data[i]!;
  return sums.map((s) => s / (data.length / 3));
}

describe('data/shapes', function () {
  this.timeout(60_000);
  let dir: string | undefined;
  const small = (root: string, changes: Partial<ShapesOptions> = {}): ShapesOptions => ({
    root, classes: 4, trainPerClass: 5, validationPerClass: 2, imageSize: 48, seed: 1, ...changes,
  });

  beforeEach(() => {
    dir = makeTempDir('hpctrain-shapes-');
  });
  afterEach(() => removeDir(dir));

  it('writes the ILSVRC2012 folders that openInput reads, with the classes and counts asked for', async () => {
    const root = join(dir!, 'shapes');
    const written = await writeShapesDataset(small(root));
    assert.deepEqual(written, { classes: ['circle', 'square', 'triangle', 'cross'], train: 20, validation: 8 });
    const files = listFiles(root);
    assert.equal(files.length, 28);
    assert.ok(files.includes(join('train', 'cross', 'cross_4.JPEG')) && files.includes(join('validation', 'circle', 'circle_1.JPEG')), files.join(' '));
    assert.deepEqual(readdirSync(root).sort(), ['train', 'validation'], 'nothing left over from writing');
    const metadata = await sharp(join(root, 'train', 'square', 'square_0.JPEG')).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height, metadata.channels], ['jpeg', 48, 48, 3]);

    const common = { data: root, imageSize: 75, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 0 };
    const train = await openInput({ ...common, split: 'train', batchSize: 3 });
    const validation = await openInput({ ...common, split: 'validation', batchSize: 3 });
    try {
      assert.equal(train.numClasses, 4);
      assert.deepEqual(train.classes, ['circle', 'cross', 'square', 'triangle']);
      assert.equal(train.stepsPerEpoch, Math.floor(20 / 3));
      assert.match(train.description, /ImageNet folders train\/ .*: 20 images, 4 classes/);
      assert.match(validation.description, /ImageNet folders validation\/ .*: 8 images, 4 classes/);
      const labels: number[] = [];
      for await (const batch of validation.epoch(0)) labels.push(...batch.labels);
      assert.deepEqual(labels.sort(), [0, 0, 1, 1, 2, 2, 3, 3]);
      assert.deepEqual(validation.badImages, []);
    } finally {
      await train.close();
      await validation.close();
    }
  });

  it('gives the same bytes for the same options, whatever the concurrency, and others for another seed', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((name) => join(dir!, name));
    await writeShapesDataset(small(a!));
    await writeShapesDataset(small(b!, { concurrency: 1 }));
    await writeShapesDataset(small(c!, { seed: 2 }));
    const files = listFiles(a!);
    assert.deepEqual(listFiles(b!), files);
    assert.deepEqual(listFiles(c!), files);
    for (const file of files) {
      assert.ok(readFileSync(join(a!, file)).equals(readFileSync(join(b!, file))), `${file} differs between two runs`);
      assert.ok(!readFileSync(join(a!, file)).equals(readFileSync(join(c!, file))), `${file} is the same for seeds 1 and 2`);
    }
  });

  it('draws each image from its own stream: asking for fewer classes or images leaves the others as they were', async () => {
    const full = join(dir!, 'full');
    const part = join(dir!, 'part');
    await writeShapesDataset(small(full));
    await writeShapesDataset(small(part, { classes: 2, trainPerClass: 2, validationPerClass: 1 }));
    const files = listFiles(part);
    assert.equal(files.length, 6);
    for (const file of files) assert.ok(readFileSync(join(part, file)).equals(readFileSync(join(full, file))), file);
  });

  it('draws every class as a foreground that covers 4-70% of the image', async () => {
    const size = 64;
    const render = async (svg: string) => sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
    for (const shape of SHAPE_CLASSES) {
      for (let draw = 0; draw < 5; draw++) {
        const svg = drawShapeSvg(shape, createRandom(3, draw), size);
        // The same document without its foreground group: the background alone.
        const background = svg.replace(/<g [^>]*>.*<\/g>/, '');
        assert.notEqual(background, svg);
        const [drawn, bare] = await Promise.all([render(svg), render(background)]);
        let covered = 0;
        for (let p = 0; p < drawn.length; p += 3) if (Math.abs(luma([drawn[p]!, drawn[p + 1]!, drawn[p + 2]!]) - luma([bare[p]!, bare[p + 1]!, bare[p + 2]!])) > 32) covered++;
        // The smallest object (a triangle at 40%) covers 5% of the image, the largest (a circle at
        // 85%) 57%; textures 12-65%.
        const fraction = covered / (size * size);
        assert.ok(fraction > 0.04 && fraction < 0.7, `${shape} draw ${draw}: foreground covers ${(fraction * 100).toFixed(1)}%`);
      }
    }
  });

  it('does not tell the classes apart by colour: the mean colour is the same for every class', async () => {
    const root = join(dir!, 'colour');
    const perClass = 150;
    await writeShapesDataset({ root, classes: SHAPE_CLASSES.length, trainPerClass: perClass, validationPerClass: 30, imageSize: 32, seed: 7 });
    const means = async (split: string) =>
      Promise.all(SHAPE_CLASSES.map((shape) => Promise.all(readdirSync(join(root, split, shape)).map((f) => meanColour(join(root, split, shape, f))))));
    const train = await means('train');
    const average = (rows: number[][], k: number) => rows.reduce((s, r) => s + r[k]!, 0) / rows.length;
    const grand = [0, 1, 2].map((k) => average(train.flat(), k));
    // Each class mean is a mean of `perClass` image means, so it lies within a few standard errors
    // of the grand mean when colour does not depend on the class: 4 of them for 30 comparisons.
    // The image means spread by about 60 levels, so the tolerance is about 20 of 255: a class
    // drawn in its own colour, or on a dark background, is far outside it.
    SHAPE_CLASSES.forEach((shape, c) => {
      for (let k = 0; k < 3; k++) {
        const rows = train[c]!;
        const mean = average(rows, k);
        const sd = Math.sqrt(rows.reduce((s, r) => s + (r[k]! - mean) ** 2, 0) / (rows.length - 1));
        const tolerance = (4 * sd) / Math.sqrt(rows.length);
        assert.ok(tolerance < 30, `${shape} channel ${k}: tolerance ${tolerance.toFixed(1)} would let a colour bias through`);
        assert.ok(Math.abs(mean - grand[k]!) < tolerance, `${shape} channel ${k}: mean ${mean.toFixed(1)}, all classes ${grand[k]!.toFixed(1)}, tolerance ${tolerance.toFixed(1)}`);
      }
    });
    // And a classifier that sees only the mean colour does no better than chance on other images:
    // 300 validation images give chance (10%) a standard error of 1.7%, so 18% is almost five.
    const centroids = train.map((rows) => [0, 1, 2].map((k) => average(rows, k)));
    const validation = await means('validation');
    let right = 0;
    let total = 0;
    validation.forEach((rows, c) => {
      for (const colour of rows) {
        const distances = centroids.map((m) => m.reduce((s, v, k) => s + (v - colour[k]!) ** 2, 0));
        if (distances.indexOf(Math.min(...distances)) === c) right++;
        total++;
      }
    });
    assert.ok(right / total < 0.18, `nearest mean colour classifies ${right} of ${total}`);
  });

  it('refuses a directory that already holds data, and numbers out of range', async () => {
    mkdirSync(join(dir!, 'train'));
    await assert.rejects(writeShapesDataset(small(dir!)), (error: unknown) => {
      assert.ok(error instanceof DataError);
      assert.match(error.message, /already holds train\/: the shapes dataset is not written over existing data/);
      assert.match(error.hint!, /give another directory/);
      return true;
    });
    assert.deepEqual(readdirSync(dir!), ['train'], 'nothing written');
    const shards = join(dir!, 'shards');
    mkdirSync(shards);
    writeFileSync(join(shards, 'validation-00000-of-00001'), '');
    await assert.rejects(writeShapesDataset(small(shards)), /already holds validation-00000-of-00001/);
    await assert.rejects(writeShapesDataset(small(join(dir!, 'x'), { classes: 11 })), (e: unknown) => e instanceof OptionsError && /number of classes 11 is not a whole number in 1\.\.10/.test(e.message));
    await assert.rejects(writeShapesDataset(small(join(dir!, 'x'), { imageSize: 8.5 })), OptionsError);
  });
});
