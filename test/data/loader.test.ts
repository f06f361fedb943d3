// The whole pipeline with real worker threads, real sharp and real files.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecodePool } from '../../src/data/decode-pool.js';
import { openInput, type InputOptions } from '../../src/data/input.js';
import type { BadImage, Batch, InputPipeline } from '../../src/data/types.js';
import { DataError, OptionsError } from '../../src/errors.js';
import { CORRUPT_BYTES, imagenetExample, makeTempDir, removeDir, solidJpeg, writeImagenetTrain, writeTfRecordFile, type ImagenetFixture, type Rgb } from './helpers.js';

const SIZE = 16;

async function collect(input: InputPipeline, epoch: number): Promise<Batch[]> {
  const batches: Batch[] = [];
  for await (const batch of input.epoch(epoch)) batches.push(batch);
  return batches;
}

/** The class whose colour an image (slot `i` of the batch) shows, or -1. */
function classOf(batch: Batch, i: number, colours: readonly Rgb[]): number {
  const per = batch.imageSize * batch.imageSize * 3;
  const mean = [0, 0, 0];
  for (let p = 0; p < per; p++) mean[p % 3] += batch.images[i * per + p]! / (per / 3);
  const rgb = mean.map((v) => (v + 1) * 127.5);
  return colours.findIndex((c) => c.every((v, k) => Math.abs(v - rgb[k]!) < 6));
}

function checkBatches(batches: Batch[], colours: readonly Rgb[]): void {
  for (const batch of batches) {
    assert.equal(batch.images.length, batch.batchSize * SIZE * SIZE * 3);
    assert.equal(batch.labels.length, batch.batchSize);
    assert.ok(batch.images.every((v) => v >= -1 && v <= 1));
    for (let i = 0; i < batch.batchSize; i++) assert.equal(classOf(batch, i, colours), batch.labels[i], `image ${i} shows another class than its label`);
  }
}

describe('data/loader', function () {
  this.timeout(60000);
  let root: string;
  let fixture: ImagenetFixture;
  let pool: DecodePool;
  const opened: InputPipeline[] = [];
  const open = async (options: Partial<InputOptions>): Promise<InputPipeline> => {
    const input = await openInput({ data: root, split: 'train', batchSize: 8, imageSize: SIZE, rank: 0, size: 1, seed: 5, threads: 2, prefetch: 2, pool, ...options });
    opened.push(input);
    return input;
  };

  before(async () => {
    root = makeTempDir();
    // 3 classes x 33 images and one corrupt file: 1 bad in 100 is 1%, not more than 1%.
    fixture = await writeImagenetTrain(root, 3, 33, [40, 30]);
    writeFileSync(join(root, 'train', fixture.classes[1]!, 'broken.JPEG'), CORRUPT_BYTES);
    pool = await DecodePool.start(2);
  });
  after(async () => {
    await Promise.all(opened.map((input) => input.close()));
    await pool?.close();
    removeDir(root);
  });

  it('hands out full batches whose labels match the class folders, skipping and reporting a corrupt image', async () => {
    const reported: BadImage[] = [];
    const input = await open({ onBadImage: (bad) => reported.push(bad) });
    const sortedColours = [...fixture.classes.keys()].sort((a, b) => (fixture.classes[a]! < fixture.classes[b]! ? -1 : 1)).map((c) => fixture.colours[c]!);
    assert.equal(input.numClasses, 3);
    assert.equal(input.stepsPerEpoch, Math.floor(100 / 8));
    for (const epoch of [0, 1]) {
      const batches = await collect(input, epoch);
      assert.equal(batches.length, input.stepsPerEpoch);
      assert.ok(batches.every((b) => b.batchSize === 8));
      checkBatches(batches, sortedColours);
    }
    assert.equal(reported.length, 1, 'reported once, though met in two epochs (when drawn)');
    assert.equal(reported[0]!.path, join(root, 'train', fixture.classes[1]!, 'broken.JPEG'));
    assert.match(reported[0]!.reason, /unsupported image format/);
    assert.deepEqual(input.badImages, reported);
  });

  it('refills the slots of bad images the same way in a resumed epoch as in the uninterrupted one, whatever order the decodes finish in', async () => {
    const dir = makeTempDir();
    try {
      const small = await writeImagenetTrain(dir, 3, 20, [40, 30]);
      for (let i = 0; i < 6; i++) writeFileSync(join(dir, 'train', small.classes[i % 3]!, `broken${i}.JPEG`), CORRUPT_BYTES);
      const input = await openInput({ data: dir, split: 'train', batchSize: 4, imageSize: SIZE, rank: 0, size: 1, seed: 9, threads: 3, prefetch: 3, pool, maxBadFraction: 0.2 });
      opened.push(input);
      for (const epoch of [0, 1]) {
        const whole = await collect(input, epoch);
        for (const from of [1, 6, 11]) {
          const resumed: Batch[] = [];
          for await (const batch of input.epoch(epoch, from)) resumed.push(batch);
          assert.equal(resumed.length, whole.length - from);
          resumed.forEach((batch, i) => {
            assert.deepEqual([...batch.labels], [...whole[from + i]!.labels], `epoch ${epoch}, resumed at ${from}: batch ${from + i}'s labels`);
            assert.ok(Buffer.from(batch.images.buffer, batch.images.byteOffset, batch.images.byteLength)
              .equals(Buffer.from(whole[from + i]!.images.buffer, whole[from + i]!.images.byteOffset, whole[from + i]!.images.byteLength)), `epoch ${epoch}, resumed at ${from}: batch ${from + i}'s images`);
          });
        }
      }
      assert.equal(input.badImages.length, 6);
    } finally {
      removeDir(dir);
    }
  });

  it('stops with a DataError naming the files when more than 1% are bad', async () => {
    const dir = makeTempDir();
    try {
      const small = await writeImagenetTrain(dir, 2, 50);
      writeFileSync(join(dir, 'train', small.classes[0]!, 'bad1.JPEG'), CORRUPT_BYTES);
      const truncated = readFileSync(join(dir, 'train', small.classes[0]!, `${small.classes[0]}_1000.JPEG`));
      writeFileSync(join(dir, 'train', small.classes[1]!, 'bad2.JPEG'), truncated.subarray(0, truncated.length - 200));
      // Evaluation reads every image: 2 bad in 102 is 2%.
      const input = await openInput({ data: dir, split: 'train', mode: 'eval', batchSize: 8, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 2, prefetch: 1, pool });
      opened.push(input);
      await assert.rejects(collect(input, 0), (error: unknown) => {
        assert.ok(error instanceof DataError, String(error));
        assert.equal(error.rank, 0);
        assert.match(error.message, /rank 0: 2 of the 102 images it reads in epoch 0 could not be used, more than 1%/);
        assert.ok(error.message.includes(join(dir, 'train', small.classes[0]!, 'bad1.JPEG')));
        assert.ok(error.message.includes(join(dir, 'train', small.classes[1]!, 'bad2.JPEG')));
        return true;
      });
    } finally {
      removeDir(dir);
    }
  });

  it('gives ranks disjoint shards that together cover the data, the same on every rank for a seed', async () => {
    // Identify images by content: one class per image.
    const dir = makeTempDir();
    try {
      const colours: Rgb[] = Array.from({ length: 12 }, (_, i) => [20 * i + 10, 240 - 20 * i, (i % 3) * 100 + 20]);
      const { mkdirSync } = await import('node:fs');
      for (let i = 0; i < 12; i++) {
        mkdirSync(join(dir, 'train', `c${String(i).padStart(2, '0')}`), { recursive: true });
        writeFileSync(join(dir, 'train', `c${String(i).padStart(2, '0')}`, 'a.JPEG'), await solidJpeg(24, 24, colours[i]!));
      }
      const epochLabels = async (rank: number, epoch: number, mode: 'train' | 'eval') => {
        const input = await openInput({ data: dir, split: 'train', mode, batchSize: 2, imageSize: SIZE, rank, size: 3, seed: 99, threads: 2, prefetch: 1, pool });
        opened.push(input);
        const batches = await collect(input, epoch);
        checkBatches(batches, colours);
        return batches.flatMap((b) => [...b.labels]);
      };
      const seen: number[][] = [];
      for (const rank of [0, 1, 2]) seen.push(await epochLabels(rank, 0, 'train'));
      assert.deepEqual(seen.flat().sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
      assert.deepEqual(await epochLabels(1, 0, 'train'), seen[1], 'same seed and epoch, same shard');
      const next = await epochLabels(1, 1, 'train');
      assert.notDeepEqual(next, seen[1], 'reshuffled in the next epoch');
      const evaluated = [];
      for (const rank of [0, 1, 2]) evaluated.push(...(await epochLabels(rank, 0, 'eval')));
      assert.deepEqual(evaluated.sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i), 'evaluation: every image once');
    } finally {
      removeDir(dir);
    }
  });

  it('reads TFRecord shards, maps build_imagenet_data.py labels to class indices, and skips a record with a bad CRC', async () => {
    const dir = makeTempDir();
    try {
      const jpegs = await Promise.all(fixture.colours.map((c) => solidJpeg(40, 30, c)));
      const records = Array.from({ length: 12 }, (_, i) => imagenetExample(jpegs[i % 3]!, (i % 3) + 1));
      writeTfRecordFile(join(dir, 'validation-00000-of-00002'), records.slice(0, 7));
      writeTfRecordFile(join(dir, 'validation-00001-of-00002'), records.slice(7));
      // Damage one byte inside the data of the second shard's first record (after its 12-byte header).
      const shard = join(dir, 'validation-00001-of-00002');
      const bytes = readFileSync(shard);
      bytes[12 + 100] ^= 0xff;
      writeFileSync(shard, bytes);
      const reported: BadImage[] = [];
      const input = await openInput({ data: dir, split: 'validation', batchSize: 5, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 2, prefetch: 2, pool, numClasses: 3, maxBadFraction: 0.1, onBadImage: (b) => reported.push(b) });
      opened.push(input);
      assert.match(input.description, /TFRecord shards validation-00000-of-00002.*12 records/);
      const batches = await collect(input, 0);
      // Batches of 5, 5 and 2 in evaluation's fixed order, one of them a record short: the gap is closed.
      const sizes = batches.map((b) => b.batchSize);
      assert.equal(sizes.length, 3);
      assert.deepEqual(sizes.map((size, i) => [5, 5, 2][i]! - size).sort(), [0, 0, 1], `batch sizes ${sizes}`);
      checkBatches(batches, fixture.colours);
      // Every record but the damaged one (record 7, label 1 + 1 in the file).
      assert.deepEqual(batches.flatMap((b) => [...b.labels]).sort(), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]);
      assert.equal(reported.length, 1);
      assert.match(reported[0]!.path, /validation-00001-of-00002 record 0 \(byte 0\)$/);
      assert.match(reported[0]!.reason, /data CRC does not match/);
    } finally {
      removeDir(dir);
    }
  });

  it('counts a TFRecord label outside the classes as a bad image', async () => {
    const dir = makeTempDir();
    try {
      const jpeg = await solidJpeg(40, 30, fixture.colours[0]!);
      // Four records, one batch of four: the bad one is always in it, and its slot is refilled.
      writeTfRecordFile(join(dir, 'train-00000-of-00001'), [imagenetExample(jpeg, 1), imagenetExample(jpeg, 0), imagenetExample(jpeg, 1), imagenetExample(jpeg, 1)]);
      const reported: BadImage[] = [];
      const input = await openInput({ data: dir, split: 'train', batchSize: 4, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 0, pool, numClasses: 3, maxBadFraction: 0.5, onBadImage: (b) => reported.push(b) });
      opened.push(input);
      const batches = await collect(input, 0);
      assert.deepEqual(batches.map((b) => [...b.labels]), [[0, 0, 0, 0]], 'a full batch: the bad slot refilled');
      assert.match(reported[0]?.reason ?? '', /label 0 is outside 1..3/);
    } finally {
      removeDir(dir);
    }
  });

  it('decodes `prefetch` batches ahead of the one in use, and stops cleanly when left early', async () => {
    const input = await open({ batchSize: 4, prefetch: 3 });
    const run = pool.run;
    let submitted = 0;
    pool.run = function (...args) {
      submitted++;
      return run.apply(this, args);
    };
    let taken = 0;
    try {
      for await (const batch of input.epoch(2)) {
        assert.equal(batch.batchSize, 4);
        // While the consumer holds batch 0, batches 1..3 are decoding (a bad image adds a task).
        if (taken === 0) assert.ok(submitted >= 16 && submitted <= 17, `${submitted} images submitted`);
        if (++taken === 2) break;
      }
    } finally {
      pool.run = run;
    }
    // The pool is still usable after the abandoned epoch.
    assert.equal((await collect(input, 3)).length, input.stepsPerEpoch);
  });

  it('gives synthetic batches of the model\'s shape without reading anything', async () => {
    const input = await openInput({ data: 'synthetic', split: 'train', batchSize: 4, imageSize: 32, rank: 1, size: 2, seed: 3, threads: 1, prefetch: 1 });
    assert.equal(input.stepsPerEpoch, Math.floor(Math.floor(1281167 / 2) / 4));
    assert.equal(input.numClasses, 1000);
    let count = 0;
    for await (const batch of input.epoch(0)) {
      assert.equal(batch.images.length, 4 * 32 * 32 * 3);
      assert.ok(batch.images.every((v) => v >= -1 && v <= 1));
      assert.ok(batch.labels.every((l) => l >= 0 && l < 1000));
      if (++count === 3) break;
    }
    await input.close();
  });

  it('rejects bad options by name', async () => {
    await assert.rejects(openInput({ data: root, split: 'train', batchSize: 0, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 1 }), (e: unknown) => e instanceof OptionsError && /batch size 0/.test(e.message));
    await assert.rejects(openInput({ data: root, split: 'train', batchSize: 1, imageSize: SIZE, rank: 2, size: 2, seed: 1, threads: 1, prefetch: 1 }), /rank 2 is not a whole number in 0..1/);
    await assert.rejects(openInput({ data: root, split: 'train', batchSize: 200, imageSize: SIZE, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 1, pool }), (e: unknown) => e instanceof DataError && /no full batch of 200/.test(e.message));
  });
});
