// TFRecord files, read in plain TypeScript. Each record is
//   uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes | data | uint32 masked CRC32C of data
// (tensorflow/core/lib/io/record_writer.cc). Shards are indexed once by walking the length
// headers, which every rank does for itself; a record's data and its CRC are read and checked by
// the decode worker that uses it, so a damaged record costs one image, not the run.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DataError } from '../errors.js';

const HEADER_BYTES = 12;
const FOOTER_BYTES = 4;

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** TensorFlow stores CRCs rotated and offset, so that a CRC of data holding CRCs stays strong. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

const CRC_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Where each record of one file starts and how long its data is. */
export interface TfRecordFileIndex {
  offsets: number[];
  lengths: number[];
}

/**
 * Walks the length headers of one file, checking each header's CRC. A bad header or a file that
 * ends inside a record is a DataError: the records after it can no longer be found.
 */
export function indexTfRecordFile(path: string): TfRecordFileIndex {
  const fd = openOrThrow(path);
  try {
    const size = fstatSync(fd).size;
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    const offsets: number[] = [];
    const lengths: number[] = [];
    let position = 0;
    while (position < size) {
      const got = readSync(fd, header, 0, HEADER_BYTES, position);
      const where = `${path} at byte ${position} (record ${offsets.length})`;
      if (got < HEADER_BYTES) throw damagedShard(`${where} ends inside a record header`);
      const stored = view.getUint32(8, true);
      const computed = maskCrc(crc32c(header.subarray(0, 8)));
      if (stored !== computed) {
        throw damagedShard(`${where}: the length's CRC does not match (stored ${hex(stored)}, computed ${hex(computed)})`);
      }
      const length = Number(view.getBigUint64(0, true));
      const end = position + HEADER_BYTES + length + FOOTER_BYTES;
      if (end > size) throw damagedShard(`${where} holds a record of ${length} bytes that runs past the end of the file`);
      offsets.push(position);
      lengths.push(length);
      position = end;
    }
    return { offsets, lengths };
  } finally {
    closeSync(fd);
  }
}

/** One record's data, its CRC checked; `length` is the data length from the index. */
export function readTfRecord(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const record = new Uint8Array(HEADER_BYTES + length + FOOTER_BYTES);
    const got = readSync(fd, record, 0, record.length, offset);
    if (got < record.length) throw new Error(`the record at byte ${offset} is cut short (${got} of ${record.length} bytes)`);
    const view = new DataView(record.buffer);
    if (Number(view.getBigUint64(0, true)) !== length) throw new Error(`the record at byte ${offset} changed length since indexing`);
    const data = record.subarray(HEADER_BYTES, HEADER_BYTES + length);
    const stored = view.getUint32(HEADER_BYTES + length, true);
    const computed = maskCrc(crc32c(data));
    if (stored !== computed) {
      throw new Error(`the record's data CRC does not match (stored ${hex(stored)}, computed ${hex(computed)})`);
    }
    return data;
  } finally {
    closeSync(fd);
  }
}

function openOrThrow(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    throw new DataError(`cannot open TFRecord shard ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function damagedShard(message: string): DataError {
  return new DataError(`damaged TFRecord shard: ${message}`, {
    hint: 'copy the shard again, or re-create it with build_imagenet_data.py',
  });
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
