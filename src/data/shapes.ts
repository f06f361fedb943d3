// A generated dataset with structure a model must learn (shapes-svg.ts), for checking that
// training learns without ImageNet and without internet: SVGs rendered with sharp, light pixel
// noise added, saved as JPEG in the ILSVRC2012 folders the input pipeline reads
// (root/train/<class>/<class>_<n>.JPEG, root/validation/<class>/<class>_<n>.JPEG).
//
// Every image has its own generator keyed by (seed, split, class, index), so an image does not
// depend on the order of generation, on the concurrency, or on how many classes or images were
// asked for: the same options give byte-identical files.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DataError, OptionsError } from '../errors.js';
import { createRandom, type Random } from './random.js';
import { drawShapeSvg, SHAPE_CLASSES, type ShapeClass } from './shapes-svg.js';
import type { Split } from './types.js';

export interface ShapesOptions {
  /** The directory to write train/ and validation/ into; created if missing. */
  root: string;
  /** The first `classes` of SHAPE_CLASSES (1..10), or those named. */
  classes: number | readonly ShapeClass[];
  trainPerClass: number;
  validationPerClass: number;
  /** Square images of imageSize x imageSize pixels. */
  imageSize: number;
  seed: number;
  /** Images rendered at once; default 8 (sharp does each on libuv's thread pool). */
  concurrency?: number;
}

export interface ShapesDataset {
  classes: string[];
  /** Images written per split. */
  train: number;
  validation: number;
}

export const JPEG_QUALITY = 90;
/** Each pixel's value moves by up to this much, the same in R, G and B. */
const NOISE_AMPLITUDE = 12;
const SPLITS: readonly Split[] = ['train', 'validation'];

export async function writeShapesDataset(options: ShapesOptions): Promise<ShapesDataset> {
  validateShapesOptions(options);
  const { root, imageSize, seed } = options;
  const classes = typeof options.classes === 'number' ? SHAPE_CLASSES.slice(0, options.classes) : [...options.classes];
  refuseExistingData(root);
  mkdirSync(root, { recursive: true });
  // Written aside and moved in at the end: an interrupted run leaves no half dataset that the
  // input pipeline would take for a whole one.
  const partial = mkdtempSync(join(root, '.shapes-partial-'));
  try {
    const jobs: ImageJob[] = [];
    for (const split of SPLITS) {
      const perClass = split === 'train' ? options.trainPerClass : options.validationPerClass;
      for (const shape of classes) {
        mkdirSync(join(partial, split, shape), { recursive: true });
        // Keyed by the class's place in SHAPE_CLASSES: its images are the same whichever classes are asked for.
        const classIndex = SHAPE_CLASSES.indexOf(shape);
        for (let index = 0; index < perClass; index++) {
          jobs.push({ split, shape, classIndex, index, path: join(partial, split, shape, `${shape}_${index}.JPEG`) });
        }
      }
    }
    await runBounded(jobs, options.concurrency ?? 8, async (job) => {
      const random = createRandom(seed, SPLITS.indexOf(job.split), job.classIndex, job.index);
      writeFileSync(job.path, await renderShapeJpeg(job.shape, random, imageSize));
    });
    for (const split of SPLITS) renameSync(join(partial, split), join(root, split));
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return { classes: [...classes], train: classes.length * options.trainPerClass, validation: classes.length * options.validationPerClass };
}

interface ImageJob {
  split: Split;
  shape: ShapeClass;
  classIndex: number;
  index: number;
  path: string;
}

/** One image: the SVG rendered, the noise added (from the same stream), encoded as JPEG. */
export async function renderShapeJpeg(shape: ShapeClass, random: Random, imageSize: number): Promise<Buffer> {
  const svg = drawShapeSvg(shape, random, imageSize);
  const pixels = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
  if (pixels.length !== imageSize * imageSize * 3) throw new Error(`rendering ${shape} gave ${pixels.length} bytes, not ${imageSize}x${imageSize}x3`);
  // Through a clamped view, a value pushed past 0 or 255 stops there instead of wrapping round.
  const clamped = new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.length);
  for (let p = 0; p < pixels.length; p += 3) {
    const delta = Math.round((2 * random() - 1) * NOISE_AMPLITUDE);
    clamped[p] = pixels[p]! + delta;
    clamped[p + 1] = pixels[p + 1]! + delta;
    clamped[p + 2] = pixels[p + 2]! + delta;
  }
  return sharp(pixels, { raw: { width: imageSize, height: imageSize, channels: 3 } }).jpeg({ quality: JPEG_QUALITY }).toBuffer();
}

export function validateShapesOptions(options: ShapesOptions): void {
  const whole = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) throw new OptionsError(`${name} ${value} is not a whole number in ${min}..${max}`);
  };
  if (!options.root) throw new OptionsError('the shapes dataset needs a directory to write to');
  if (typeof options.classes === 'number') {
    whole('number of classes', options.classes, 1, SHAPE_CLASSES.length);
  } else {
    const unknown = options.classes.find((name) => !SHAPE_CLASSES.includes(name));
    if (unknown !== undefined) throw new OptionsError(`"${unknown}" is not a class of the shapes dataset`, `its classes: ${SHAPE_CLASSES.join(', ')}`);
    if (options.classes.length === 0 || new Set(options.classes).size !== options.classes.length) {
      throw new OptionsError(`the classes ${options.classes.join(',') || '(none)'} are not distinct names`, `name each once, from: ${SHAPE_CLASSES.join(', ')}`);
    }
  }
  whole('training images per class', options.trainPerClass, 1, 1_000_000);
  whole('validation images per class', options.validationPerClass, 1, 1_000_000);
  whole('image size', options.imageSize, 16, 4096);
  whole('seed', options.seed, 0, 2 ** 32 - 1);
  if (options.concurrency !== undefined) whole('concurrency', options.concurrency, 1, 1024);
}

/** A directory that already holds a split (folders, or TFRecord shards that layout.ts would prefer). */
function refuseExistingData(root: string): void {
  if (!existsSync(root)) return;
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (error) {
    throw new DataError(`cannot list ${root}: ${(error as Error).message}`, { hint: 'give a directory to create, or an empty one', cause: error });
  }
  const found = names.filter((name) => ['train', 'validation', 'val'].includes(name) || /^(train|validation)-\d+-of-\d+$/.test(name)).sort();
  if (found.length > 0) {
    const shown = found.slice(0, 3).map((name) => (/-of-/.test(name) ? name : `${name}/`)).join(', ') + (found.length > 3 ? ` and ${found.length - 3} more` : '');
    throw new DataError(`${root} already holds ${shown}: the shapes dataset is not written over existing data`, {
      hint: `give another directory, or remove what is there first (rm -r ${found.map((name) => join(root, name)).join(' ')})`,
    });
  }
}

/** Runs `work` on every item with at most `limit` running at once; the first failure rejects. */
async function runBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
