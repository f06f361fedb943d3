// Test fixtures for the input pipeline: real JPEGs made with sharp in a temporary directory, and a
// small TFRecord writer with its own (bitwise, table-free) CRC32C, so the reader is checked
// against an independent implementation rather than against itself.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

export type Rgb = readonly [number, number, number];

/** Distinct solid colours, one per class, far enough apart to tell after JPEG compression. */
export const CLASS_COLOURS: readonly Rgb[] = [
  [220, 40, 40],
  [40, 200, 60],
  [50, 60, 230],
  [230, 220, 40],
  [240, 240, 240],
  [20, 20, 20],
];

export function makeTempDir(prefix = 'hpctrain-data-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export function solidJpeg(width: number, height: number, [r, g, b]: Rgb): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).jpeg({ quality: 95 }).toBuffer();
}

/** Left half black, right half white: shows which way an image was flipped. */
export function halvesPng(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = width / 2; x < width; x++) raw.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export const CORRUPT_BYTES = Buffer.from('this is not a JPEG, whatever its name says\n');

export interface ImagenetFixture {
  root: string;
  classes: string[];
  /** Class index -> colour of its images. */
  colours: readonly Rgb[];
}

/** root/train/<wnid>/*.JPEG with `perClass` solid-colour images per class. */
export async function writeImagenetTrain(root: string, classCount: number, perClass: number, size = [40, 30]): Promise<ImagenetFixture> {
  // Class c's name sorts last for c = 0, so its index (from the sorted names) is not c; and the
  // folders are created out of order, so that a listing in directory order would differ too.
  const classes = Array.from({ length: classCount }, (_, c) => `n0${1440764 + (classCount - 1 - c) * 1111}`);
  for (const c of [...classes.keys()].reverse()) {
    const dir = join(root, 'train', classes[c]!);
    mkdirSync(dir, { recursive: true });
    const jpeg = await solidJpeg(size[0]!, size[1]!, CLASS_COLOURS[c]!);
    for (let i = 0; i < perClass; i++) writeFileSync(join(dir, `${classes[c]}_${1000 + i}.JPEG`), jpeg);
  }
  return { root, classes, colours: CLASS_COLOURS.slice(0, classCount) };
}

// ---- TFRecord writing -------------------------------------------------------------------------

/** CRC-32C one bit at a time, straight from the definition. */
export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function maskedCrc(bytes: Uint8Array): number {
  const crc = crc32cBitwise(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One record framed as tensorflow/core/lib/io/record_writer.cc frames it. */
export function frameRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc(data), 0);
  return Buffer.concat([header, data, footer]);
}

export function writeTfRecordFile(path: string, records: readonly Uint8Array[]): void {
  writeFileSync(path, Buffer.concat(records.map(frameRecord)));
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function lengthDelimited(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([varint(field * 8 + 2), varint(payload.length), payload]);
}

type FeatureValue = { bytes: Uint8Array } | { int64: number; packed?: boolean } | { float: number };

function encodeFeature(value: FeatureValue): Buffer {
  if ('bytes' in value) return lengthDelimited(1, lengthDelimited(1, value.bytes)); // BytesList
  if ('float' in value) {
    const f = Buffer.alloc(4);
    f.writeFloatLE(value.float);
    return lengthDelimited(2, lengthDelimited(1, f)); // FloatList, packed
  }
  const list = value.packed === false ? Buffer.concat([varint(1 * 8 + 0), varint(value.int64)]) : lengthDelimited(1, varint(value.int64));
  return lengthDelimited(3, list); // Int64List
}

/** A tf.train.Example with the given features, in the order given. */
export function encodeExample(features: Record<string, FeatureValue>): Buffer {
  const entries = Object.entries(features).map(([key, value]) =>
    lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(key)), lengthDelimited(2, encodeFeature(value))])),
  );
  return lengthDelimited(1, Buffer.concat(entries));
}

/** A record as build_imagenet_data.py writes one: more features than the pipeline reads. */
export function imagenetExample(jpeg: Uint8Array, label: number, synset = 'n01440764'): Buffer {
  return encodeExample({
    'image/height': { int64: 30 },
    'image/width': { int64: 40 },
    'image/colorspace': { bytes: Buffer.from('RGB') },
    'image/channels': { int64: 3 },
    'image/class/label': { int64: label },
    'image/class/synset': { bytes: Buffer.from(synset) },
    'image/object/bbox/xmin': { float: 0.1 },
    'image/format': { bytes: Buffer.from('JPEG') },
    'image/filename': { bytes: Buffer.from(`${synset}_1.JPEG`) },
    'image/encoded': { bytes: jpeg },
  });
}
