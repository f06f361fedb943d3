// The checkpoint file, format version 1. One file per checkpoint, named ckpt-<step>.hpct with the
// step zero-padded to 9 digits (more digits past 999,999,999), so `ls` sorts them too.
//
//   offset 0   magic "HPCTCKPT" (8 bytes)
//          8   format version, u32 little-endian (1)
//         12   header length H in bytes, u32 little-endian (JSON and its padding)
//         16   header: UTF-8 JSON {"step":…,"arrays":[{"name","length","offset"},…],"meta":{…}},
//              padded with spaces so that the data starts at a multiple of 64 (16 + H)
//   16 + H     the arrays in header order, float32 little-endian; each starts at the first
//              multiple of 64 at or after the end of the one before (zero bytes between), at the
//              absolute file offset its entry names; `length` counts floats, not bytes
//   E          SHA-256 of bytes [0, E), 32 bytes; E is where the last array ends (16 + H if none)
//
// The file is exactly E + 32 bytes long. Offsets are absolute so a reader in another language can
// map an array without understanding the layout rule, and 64-byte alignment lets it view the
// floats in place (a cache line, and more than Float32Array or SIMD loads need). This reader holds
// the layout to the rule above, so any disagreement between header and file is caught before the
// data is read; the checksum catches every other change of a byte.
import { CorruptCheckpointError } from '../errors.js';

// The fixed part of the layout above.
export const MAGIC = Buffer.from('HPCTCKPT', 'latin1');
export const FORMAT_VERSION = 1;
export const PREFIX_BYTES = 16;
export const ALIGNMENT = 64;
export const CHECKSUM_BYTES = 32;

/** Where one array's floats are in the file. */
export interface ArrayEntry {
  name: string;
  /** Number of floats. */
  length: number;
  /** Absolute byte offset of the first float. */
  offset: number;
}

/** The JSON header as written. */
export interface CheckpointHeader {
  step: number;
  arrays: ArrayEntry[];
  meta: Record<string, unknown>;
}

/** A header ready to write: its bytes (prefix, JSON and padding), entries, and where the checksum goes. */
export interface EncodedHeader {
  bytes: Buffer;
  arrays: ArrayEntry[];
  dataEnd: number;
}

const FILE_NAME = /^ckpt-(\d{9,})\.hpct$/;

/** ckpt-000001234.hpct for step 1234. */
export function checkpointFileName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}.hpct`;
}

/** The step a checkpoint file name stands for; undefined for any other name, including one padded otherwise. */
export function stepOfFileName(name: string): number | undefined {
  const match = FILE_NAME.exec(name);
  if (!match) return undefined;
  const step = Number(match[1]);
  return Number.isSafeInteger(step) && checkpointFileName(step) === name ? step : undefined;
}

function alignUp(offset: number): number {
  return Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
}

/** Offsets of arrays of these lengths when the data starts at dataStart, and where the last one ends. */
function layOut(lengths: readonly { name: string; length: number }[], dataStart: number): { arrays: ArrayEntry[]; dataEnd: number } {
  let end = dataStart;
  const arrays = lengths.map(({ name, length }) => {
    const offset = alignUp(end);
    end = offset + length * Float32Array.BYTES_PER_ELEMENT;
    return { name, length, offset };
  });
  return { arrays, dataEnd: end };
}

/** Throws a TypeError (from JSON.stringify) when meta is not JSON. */
export function encodeHeader(step: number, meta: Record<string, unknown>, lengths: readonly { name: string; length: number }[]): EncodedHeader {
  // The offsets are written in the header whose length decides them: grow the guess of where the
  // data starts until it holds. It only grows and the offsets' digits grow with its logarithm, so
  // this settles in two or three rounds.
  let dataStart = 0;
  for (;;) {
    const layout = layOut(lengths, dataStart);
    const json = JSON.stringify({ step, arrays: layout.arrays, meta } satisfies CheckpointHeader);
    const start = alignUp(PREFIX_BYTES + Buffer.byteLength(json));
    if (start === dataStart) {
      const bytes = Buffer.alloc(start, ' ');
      MAGIC.copy(bytes, 0);
      bytes.writeUInt32LE(FORMAT_VERSION, 8);
      bytes.writeUInt32LE(start - PREFIX_BYTES, 12);
      bytes.write(json, PREFIX_BYTES, 'utf8');
      return { bytes, arrays: layout.arrays, dataEnd: layout.dataEnd };
    }
    dataStart = start;
  }
}

const DAMAGED_HINT = 'move or delete it; resuming from its directory falls back to the checkpoint before it';

/** The header length the 16-byte prefix announces; throws on a file that is not a checkpoint we read. */
export function decodePrefix(path: string, prefix: Buffer, fileBytes: number): number {
  const magic = prefix.subarray(0, MAGIC.length);
  if (!magic.equals(MAGIC.subarray(0, magic.length))) {
    throw new CorruptCheckpointError(path, `bad magic (it does not start with "${MAGIC.toString('latin1')}": not an hpctrain checkpoint)`, DAMAGED_HINT);
  }
  if (prefix.length < PREFIX_BYTES) throw truncated(path, fileBytes, PREFIX_BYTES);
  const version = prefix.readUInt32LE(8);
  if (version !== FORMAT_VERSION) {
    throw new CorruptCheckpointError(path, `unsupported format version ${version} (this hpctrain reads version ${FORMAT_VERSION})`,
      'resume with the hpctrain version that wrote it, or from an older checkpoint');
  }
  const headerBytes = prefix.readUInt32LE(12);
  if ((PREFIX_BYTES + headerBytes) % ALIGNMENT !== 0) {
    throw malformed(path, `the header is ${headerBytes} bytes, so the data would not start at a multiple of ${ALIGNMENT}`);
  }
  if (PREFIX_BYTES + headerBytes + CHECKSUM_BYTES > fileBytes) throw truncated(path, fileBytes, PREFIX_BYTES + headerBytes + CHECKSUM_BYTES);
  return headerBytes;
}

/** The header, checked field by field and against the layout rule; dataEnd is where the checksum goes. */
export function decodeHeader(path: string, json: Buffer): CheckpointHeader & { dataEnd: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw malformed(path, `not JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) throw malformed(path, 'not a JSON object');
  const { step, arrays, meta } = parsed;
  if (!Number.isSafeInteger(step) || (step as number) < 0) throw malformed(path, `step ${JSON.stringify(step)} is not a whole number >= 0`);
  if (!isRecord(meta)) throw malformed(path, 'meta is not a JSON object');
  if (!Array.isArray(arrays)) throw malformed(path, 'arrays is not a list');
  const names = new Set<string>();
  const lengths = arrays.map((entry: unknown, index) => {
    if (!isRecord(entry) || typeof entry.name !== 'string') throw malformed(path, `arrays[${index}] has no name`);
    if (names.has(entry.name)) throw malformed(path, `two arrays are named "${entry.name}"`);
    names.add(entry.name);
    if (!Number.isSafeInteger(entry.length) || (entry.length as number) < 0) {
      throw malformed(path, `array "${entry.name}" has length ${JSON.stringify(entry.length)}, not a whole number >= 0`);
    }
    return { name: entry.name, length: entry.length as number, offset: entry.offset };
  });
  const layout = layOut(lengths, PREFIX_BYTES + json.length);
  layout.arrays.forEach(({ name, offset }, index) => {
    if (lengths[index]!.offset !== offset) {
      throw malformed(path, `array "${name}" is at offset ${JSON.stringify(lengths[index]!.offset)}; the layout puts it at ${offset}`);
    }
  });
  return { step: step as number, arrays: layout.arrays, meta, dataEnd: layout.dataEnd };
}

/** The file is shorter than its header says: a copy or a write that stopped early. */
export function truncated(path: string, fileBytes: number, expectedBytes: number): CorruptCheckpointError {
  return new CorruptCheckpointError(path, `truncated (${fileBytes} bytes, ${expectedBytes} expected)`, DAMAGED_HINT);
}

/** Bytes past the checksum: not something a write of ours leaves, so not to be trusted either. */
export function trailingBytes(path: string, fileBytes: number, expectedBytes: number): CorruptCheckpointError {
  return new CorruptCheckpointError(path, `${fileBytes - expectedBytes} bytes after the checksum (${expectedBytes} expected)`, DAMAGED_HINT);
}

/** The header is well formed JSON that breaks the format, or no JSON at all. */
export function malformed(path: string, what: string): CorruptCheckpointError {
  return new CorruptCheckpointError(path, `malformed header: ${what}`, DAMAGED_HINT);
}

/** Every length and offset adds up, but some byte is not what was written. */
export function checksumMismatch(path: string): CorruptCheckpointError {
  return new CorruptCheckpointError(path, 'checksum mismatch (its bytes changed after it was written: a disk, file-system or copy error)', DAMAGED_HINT);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
