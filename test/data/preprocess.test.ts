import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  centralCrop,
  decodeImage,
  MAX_ASPECT,
  MIN_AREA,
  MIN_ASPECT,
  sampleTrainAugmentation,
  sampleTrainCrop,
} from '../../src/data/preprocess.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDecodeTask } from '../../src/data/decode.js';
import { createRandom } from '../../src/data/random.js';
import { halvesPng, makeTempDir, removeDir, solidJpeg } from './helpers.js';

const noFlip = (crop: { left: number; top: number; width: number; height: number }) => () => ({ crop, flip: false });

describe('data/preprocess', () => {
  it('draws training crops of 5-100% of the area with aspect 3/4-4/3, inside the image', () => {
    for (const [width, height] of [[500, 375], [375, 500], [299, 299], [64, 48], [1024, 200], [200, 1024], [17, 13]] as const) {
      let smallest = 1;
      let largest = 0;
      for (let draw = 0; draw < 2000; draw++) {
        const crop = sampleTrainCrop(createRandom(11, width, draw), width, height);
        const area = (crop.width * crop.height) / (width * height);
        const aspect = crop.width / crop.height;
        const where = `${width}x${height} draw ${draw}: ${JSON.stringify(crop)}`;
        assert.ok(Number.isInteger(crop.left) && Number.isInteger(crop.top) && Number.isInteger(crop.width) && Number.isInteger(crop.height), where);
        assert.ok(crop.left >= 0 && crop.top >= 0 && crop.left + crop.width <= width && crop.top + crop.height <= height, where);
        assert.ok(area >= MIN_AREA && area <= 1, `${where}: area ${area}`);
        assert.ok(aspect >= MIN_ASPECT - 1e-9 && aspect <= MAX_ASPECT + 1e-9, `${where}: aspect ${aspect}`);
        smallest = Math.min(smallest, area);
        largest = Math.max(largest, area);
      }
      // The draws use the range, not one corner of it (where the image's shape allows large crops).
      if (width >= 64 && width / height >= MIN_ASPECT && width / height <= MAX_ASPECT) assert.ok(smallest < 0.1 && largest > 0.7, `${width}x${height}: areas ${smallest}..${largest}`);
    }
  });

  it('places crops all over the image and flips about half of them, the same for the same seed', () => {
    let flips = 0;
    const lefts = new Set<number>();
    for (let draw = 0; draw < 1000; draw++) {
      const { crop, flip } = sampleTrainAugmentation(createRandom(3, 0, draw), 500, 375);
      if (flip) flips++;
      lefts.add(Math.floor(crop.left / 50));
    }
    assert.ok(flips > 430 && flips < 570, `${flips} flips in 1000`);
    assert.ok(lefts.size >= 8, `left edges only in ${[...lefts]}`);
    assert.deepEqual(sampleTrainAugmentation(createRandom(3, 0, 7), 500, 375), sampleTrainAugmentation(createRandom(3, 0, 7), 500, 375));
    assert.notDeepEqual(sampleTrainAugmentation(createRandom(3, 0, 7), 500, 375), sampleTrainAugmentation(createRandom(3, 1, 7), 500, 375));
  });

  it('crops the central 87.5% of each side for evaluation, as tf.image.central_crop', () => {
    assert.deepEqual(centralCrop(500, 375), { left: 31, top: 23, width: 438, height: 329 });
    assert.deepEqual(centralCrop(299, 299), { left: 18, top: 18, width: 263, height: 263 });
    for (const [w, h] of [[640, 480], [333, 500], [8, 8]]) {
      const crop = centralCrop(w!, h!);
      assert.equal(crop.left * 2 + crop.width, w);
      assert.equal(crop.top * 2 + crop.height, h);
      // The margin is truncated to whole pixels, so each side keeps up to 2 pixels more than 87.5%.
      assert.ok(crop.width - w! * 0.875 >= 0 && crop.width - w! * 0.875 < 2, JSON.stringify(crop));
      assert.ok(crop.height - h! * 0.875 >= 0 && crop.height - h! * 0.875 < 2, JSON.stringify(crop));
    }
  });

  it('maps a solid colour to (v / 127.5 - 1), all values in [-1, 1]', async () => {
    const rgb = [200, 40, 100] as const;
    const out = new Float32Array(10 + 24 * 24 * 3);
    out.fill(7);
    await decodeImage(await solidJpeg(64, 48, rgb), noFlip({ left: 3, top: 2, width: 50, height: 40 }), 24, out, 10);
    assert.equal(out[9], 7, 'wrote before its offset');
    for (let i = 10; i < out.length; i++) {
      const expected = rgb[(i - 10) % 3]! / 127.5 - 1;
      assert.ok(Math.abs(out[i]! - expected) <= 2.5 / 127.5, `value ${i}: ${out[i]} vs ${expected}`);
      assert.ok(out[i]! >= -1 && out[i]! <= 1);
    }
    // The extremes map to exactly -1 and 1.
    const bw = new Float32Array(4 * 4 * 3);
    const png = await sharp({ create: { width: 8, height: 4, channels: 3, background: { r: 0, g: 255, b: 0 } } }).png().toBuffer();
    await decodeImage(png, noFlip({ left: 0, top: 0, width: 8, height: 4 }), 4, bw, 0);
    assert.deepEqual([...bw.subarray(0, 3)], [-1, 1, -1]);
  });

  it('crops the requested box and flips left to right', async () => {
    const png = await halvesPng(64, 32); // left black, right white
    const size = 8;
    const meanOf = (out: Float32Array, fromX: number, toX: number) => {
      let sum = 0;
      for (let y = 0; y < size; y++) for (let x = fromX; x < toX; x++) sum += out[(y * size + x) * 3]!;
      return sum / (size * (toX - fromX));
    };
    const left = new Float32Array(size * size * 3);
    await decodeImage(png, noFlip({ left: 0, top: 0, width: 32, height: 32 }), size, left, 0);
    assert.ok(meanOf(left, 0, size) < -0.99, 'the left half is black');
    const whole = new Float32Array(size * size * 3);
    await decodeImage(png, noFlip({ left: 0, top: 0, width: 64, height: 32 }), size, whole, 0);
    assert.ok(meanOf(whole, 0, 3) < -0.9 && meanOf(whole, 5, 8) > 0.9);
    const flipped = new Float32Array(size * size * 3);
    await decodeImage(png, () => ({ crop: { left: 0, top: 0, width: 64, height: 32 }, flip: true }), size, flipped, 0);
    assert.ok(meanOf(flipped, 0, 3) > 0.9 && meanOf(flipped, 5, 8) < -0.9, 'white on the left after the flip');
  });

  it('gives RGB for greyscale images and rejects what is not an image', async () => {
    const grey = await sharp(Buffer.alloc(32 * 32, 64), { raw: { width: 32, height: 32, channels: 1 } }).png().toBuffer();
    const out = new Float32Array(8 * 8 * 3);
    await decodeImage(grey, noFlip({ left: 0, top: 0, width: 32, height: 32 }), 8, out, 0);
    assert.ok(out.every((v) => Math.abs(v - (64 / 127.5 - 1)) < 1e-6));
    await assert.rejects(decodeImage(Buffer.from('not an image'), noFlip({ left: 0, top: 0, width: 1, height: 1 }), 8, out, 0), /unsupported image format/);
    const jpeg = await solidJpeg(64, 48, [1, 2, 3]);
    await assert.rejects(decodeImage(jpeg.subarray(0, jpeg.length >> 1), noFlip({ left: 0, top: 0, width: 64, height: 48 }), 8, out, 0), /premature end|truncated/i);
  });

  it('crops by example: the same example the same way on any thread, other examples otherwise', async () => {
    const dir = makeTempDir();
    try {
      const path = join(dir, 'halves.png');
      writeFileSync(path, await halvesPng(64, 48));
      const size = 8;
      const decode = async (seed: number, epoch: number, index: number) => {
        const output = new SharedArrayBuffer(size * size * 3 * 4);
        const result = await runDecodeTask({ id: 1, location: { kind: 'file', path }, crop: { mode: 'train', seed, epoch, index }, imageSize: size, output, outputOffset: 0 });
        assert.ok(result.ok, JSON.stringify(result));
        return Array.from(new Float32Array(output)).join();
      };
      assert.equal(await decode(1, 0, 5), await decode(1, 0, 5));
      const outputs = new Set<string>();
      for (let index = 0; index < 8; index++) outputs.add(await decode(1, 0, index));
      assert.ok(outputs.size >= 6, `only ${outputs.size} different crops for 8 examples`);
      assert.notEqual(await decode(1, 0, 5), await decode(1, 1, 5));
      const failed = await runDecodeTask({ id: 2, location: { kind: 'file', path: join(dir, 'missing.JPEG') }, crop: { mode: 'eval' }, imageSize: size, output: new SharedArrayBuffer(size * size * 12), outputOffset: 0 });
      assert.deepEqual({ ...failed, reason: undefined }, { id: 2, ok: false, reason: undefined });
      assert.match((failed as { reason: string }).reason, /ENOENT/);
    } finally {
      removeDir(dir);
    }
  });
});
