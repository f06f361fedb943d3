// The input pipeline benchmark: how many images per second the decode threads turn from JPEG files
// into preprocessed batches (read, decode, Inception crop and flip, resize, floats), for each number
// of threads and image size. One line per figure, and a CSV.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import sharp from 'sharp';
import { DecodePool } from '../src/data/decode-pool.js';
import { openInput } from '../src/data/input.js';
import type { ShardMode } from '../src/data/shard.js';
import { BenchError, median, parseCount, parseList, rejectUnknown, writeCsv as writeCsvFile } from './figures.js';

const DEFAULT_CSV = fileURLToPath(new URL('../../bench/results/input.csv', import.meta.url));
const CLASSES = 10;

const HELP = `Usage: node dist/bench/input.js [options]

Generates a set of JPEGs like ImageNet's (500x375, gradients and noise, quality 90) in
ImageNet's train/<wnid>/ layout in a temporary directory, then reads it through the input
pipeline (src/data) with a pool of T decode threads, for each T and image size, and prints
  input threads=T size=S mode=M img_per_s=X per_thread=X/T
img_per_s counts the images in the batches the consumer received, over the time from asking for
the first batch of a timed pass to receiving the last; each pass reads every epoch of --epochs
back to back, after one untimed pass (thread start, page cache). The figure is the median over
--repeats passes. Nothing else runs: on a machine with C cores, T > C cannot gain.

Options:
  --threads LIST      decode threads, comma-separated                         [1,2]
  --sizes LIST        image sizes, comma-separated                           [139,299]
  --images N          JPEGs to generate                                        [200]
  --batch-size B      images per batch                                          [32]
  --prefetch P        batches decoded ahead                                      [2]
  --epochs E          epochs per timed pass                                      [2]
  --repeats R         timed passes                                               [3]
  --mode train|eval   Inception's random crop and flip, or the central crop  [train]
  --csv PATH          where to write the CSV          [bench/results/input.csv]
  -h, --help          this text
`;

interface BenchOptions {
  threads: number[];
  sizes: number[];
  images: number;
  batchSize: number;
  prefetch: number;
  epochs: number;
  repeats: number;
  mode: ShardMode;
  csv: string;
}

interface Row {
  threads: number;
  size: number;
  mode: ShardMode;
  img_per_s: number;
  per_thread: number;
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  const args = minimist(argv, {
    string: ['threads', 'sizes', 'images', 'batch-size', 'prefetch', 'epochs', 'repeats', 'mode', 'csv'],
    boolean: ['help'],
    alias: { h: 'help' },
    unknown: rejectUnknown,
  });
  if (args.help) return undefined;
  const mode = args.mode ?? 'train';
  if (mode !== 'train' && mode !== 'eval') throw new BenchError(`--mode "${mode}" is neither train nor eval`);
  return {
    threads: parseList(args.threads ?? '1,2', '--threads', 1, 256),
    sizes: parseList(args.sizes ?? '139,299', '--sizes', 8, 1024),
    images: parseCount(args.images ?? '200', '--images', 1, 100000),
    batchSize: parseCount(args['batch-size'] ?? '32', '--batch-size', 1, 4096),
    prefetch: parseCount(args.prefetch ?? '2', '--prefetch', 0, 64),
    epochs: parseCount(args.epochs ?? '2', '--epochs', 1, 1000),
    repeats: parseCount(args.repeats ?? '3', '--repeats', 1, 100),
    mode,
    csv: resolve(args.csv ?? DEFAULT_CSV),
  };
}



/** ImageNet-like JPEGs: a smooth colour gradient under per-pixel noise, so they compress like photos. */
async function generateImages(root: string, count: number): Promise<{ bytes: number }> {
  const width = 500;
  const height = 375;
  let state = 12345;
  const noise = (): number => {
    // About ImageNet's mean JPEG size (110 KB): noise is what costs the decoder.
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 16) % 101 - 50;
  };
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const dir = join(root, 'train', `n0${1440764 + (i % CLASSES)}`);
    mkdirSync(dir, { recursive: true });
    const raw = Buffer.alloc(width * height * 3);
    const [r0, g0, b0] = [(i * 37) % 256, (i * 91) % 256, (i * 53) % 256];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = (y * width + x) * 3;
        const wave = 40 * Math.sin((x + i * 7) / 23) * Math.cos(y / 31);
        raw[p] = clamp(r0 + (x * 120) / width + wave + noise());
        raw[p + 1] = clamp(g0 + (y * 120) / height - wave + noise());
        raw[p + 2] = clamp(b0 + ((x + y) * 60) / (width + height) + noise());
      }
    }
    const path = join(dir, `n0${1440764 + (i % CLASSES)}_${i}.JPEG`);
    await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toFile(path);
    bytes += statSync(path).size;
  }
  return { bytes };
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

async function measure(root: string, threads: number, size: number, options: BenchOptions): Promise<number> {
  const pool = await DecodePool.start(threads);
  try {
    const input = await openInput({
      data: root, split: 'train', mode: options.mode, batchSize: options.batchSize, imageSize: size,
      rank: 0, size: 1, seed: 1, threads, prefetch: options.prefetch, pool,
    });
    const pass = async (first: number): Promise<number> => {
      let images = 0;
      const start = performance.now();
      for (let epoch = first; epoch < first + options.epochs; epoch++) for await (const batch of input.epoch(epoch)) images += batch.batchSize;
      const seconds = (performance.now() - start) / 1000;
      if (input.badImages.length > 0) throw new BenchError(`bad images: ${input.badImages.map((b) => `${b.path}: ${b.reason}`).join('; ')}`);
      return images / seconds;
    };
    await pass(0);
    const rates: number[] = [];
    for (let r = 1; r <= options.repeats; r++) rates.push(await pass(r * options.epochs));
    return median(rates);
  } finally {
    await pool.close();
  }
}

async function main(options: BenchOptions): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'hpctrain-bench-input-'));
  try {
    const { bytes } = await generateImages(root, options.images);
    console.log(`input images=${options.images} width=500 height=375 mean_kb=${(bytes / options.images / 1024).toFixed(1)}`);
    const rows: Row[] = [];
    for (const size of options.sizes) {
      for (const threads of options.threads) {
        const rate = await measure(root, threads, size, options);
        const row: Row = { threads, size, mode: options.mode, img_per_s: rate, per_thread: rate / threads };
        rows.push(row);
        console.log(`input threads=${threads} size=${size} mode=${row.mode} img_per_s=${row.img_per_s.toFixed(1)} per_thread=${row.per_thread.toFixed(1)}`);
      }
    }
    writeCsv(options, rows);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function writeCsv(options: BenchOptions, rows: Row[]): void {
  const date = new Date().toISOString();
  const records = rows.map((r) => ({
    threads: r.threads, size: r.size, mode: r.mode, img_per_s: r.img_per_s.toFixed(1), per_thread: r.per_thread.toFixed(1),
    images: options.images, batch_size: options.batchSize, repeats: options.repeats, date,
  }));
  writeCsvFile(options.csv, ['threads', 'size', 'mode', 'img_per_s', 'per_thread', 'images', 'batch_size', 'repeats', 'date'], records);
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (!options) process.stdout.write(HELP);
  else await main(options);
} catch (error) {
  const usage = error instanceof BenchError;
  process.stderr.write(`input bench FAILED: ${usage ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
