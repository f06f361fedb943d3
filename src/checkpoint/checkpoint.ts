// Saving and resuming training state (the file format is in format.ts). A checkpoint appears under
// its final name only once all of it is on disk, so a crash at any moment leaves the checkpoints
// before it as they were; and every read verifies the whole file, so one damaged on the way (a
// full disk, a node lost mid-copy, a flaky file system) is skipped for the one before it.
// Checkpoints run to hundreds of MB: they go through in pieces, hashed while the disk works,
// never gathered into one buffer.
import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { Worker } from 'node:worker_threads';
import { basename, join } from 'node:path';
import { CheckpointError, CorruptCheckpointError, HpcTrainError } from '../errors.js';
import {
  CHECKSUM_BYTES, PREFIX_BYTES, checkpointFileName, checksumMismatch, decodeHeader, decodePrefix, encodeHeader,
  stepOfFileName, trailingBytes, truncated, type EncodedHeader,
} from './format.js';
import type { WriteReply, WriteRequest } from './writer-thread.js';

/** What a checkpoint holds: all a run needs to go on as if it had not stopped. */
export interface CheckpointState {
  /** Steps completed when it was taken. */
  step: number;
  /** JSON-able: epoch position, RNG state, strategy, options fingerprint ... (opaque to this module). */
  meta: Record<string, unknown>;
  /** Named float32 arrays, e.g. 'weights', 'rmsprop.ms', 'rmsprop.mom', 'ema' (each up to ~100 MB). */
  arrays: Record<string, Float32Array>;
}

/** A checkpoint found in a directory, by its name; not yet read. */
export interface CheckpointFile { step: number; path: string }

// Large enough that a system call's cost vanishes, small enough to hash one piece while the
// next is on its way.
const PIECE_BYTES = 8 * 1024 * 1024;
const LITTLE_ENDIAN = endianness() === 'LE';
const WRITE_HINT = 'this is a bug in hpctrain; please report it with the message above';

/**
 * Writes atomically (temporary file in the same dir, fsync, rename, fsync the directory), then
 * deletes all but the newest `keep` checkpoints, never the one just written. Returns the path.
 * The arrays must not change until the promise settles; one writer (rank 0) per directory.
 */
export async function writeCheckpoint(dir: string, state: CheckpointState, options: { keep: number }): Promise<string> {
  const { step, meta, arrays } = state;
  if (!Number.isSafeInteger(options.keep) || options.keep < 1) {
    throw new CheckpointError(`cannot keep ${options.keep} checkpoints: at least 1 is needed`, { hint: 'keep 1 or more checkpoints' });
  }
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`cannot write a checkpoint for step ${step}: not a whole number >= 0`, { hint: WRITE_HINT });
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new CheckpointError(`cannot write checkpoint step ${step}: its meta is not a JSON object`, { hint: WRITE_HINT });
  }
  for (const [name, values] of Object.entries(arrays)) {
    if (!(values instanceof Float32Array)) throw new CheckpointError(`cannot write array "${name}" of step ${step}: not a Float32Array`, { hint: WRITE_HINT });
  }
  let header: EncodedHeader;
  try {
    header = encodeHeader(step, meta, Object.entries(arrays).map(([name, values]) => ({ name, length: values.length })));
  } catch (cause) {
    throw new CheckpointError(`cannot write checkpoint step ${step}: its meta is not JSON (${(cause as Error).message})`, { cause, hint: WRITE_HINT });
  }

  const path = join(dir, checkpointFileName(step));
  // A dot and no .hpct ending: neither listCheckpoints nor `ls ckpt-*` takes it for a checkpoint.
  const temporary = join(dir, `.${checkpointFileName(step)}.${process.pid}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeContents(temporary, header, arrays);
    // rename() replaces a checkpoint of the same step in one step; fsync of the directory makes
    // the new name survive a power loss, not only the bytes.
    await rename(temporary, path);
    await syncDirectory(dir);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    const size = header.dataEnd + CHECKSUM_BYTES;
    throw new CheckpointError(`could not write checkpoint step ${step} to ${dir}: ${describeCause(cause)}`, {
      cause, hint: `check that ${dir} can be created and written to and has ${(size / 1e6).toFixed(1)} MB free; the checkpoints before it are intact`,
    });
  }
  await pruneCheckpoints(dir, options.keep, path);
  return path;
}

async function writeContents(path: string, header: EncodedHeader, arrays: Record<string, Float32Array>): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const hash = createHash('sha256');
    let position = 0;
    const put = async (bytes: Uint8Array): Promise<void> => {
      // The write runs on libuv's thread pool while this thread hashes the same (unchanging) bytes.
      const written = writeFully(handle, bytes, position);
      hash.update(bytes);
      await written;
      position += bytes.length;
    };
    await put(header.bytes);
    for (const { name, offset } of header.arrays) {
      if (offset > position) await put(new Uint8Array(offset - position));
      const bytes = bytesOf(arrays[name]!);
      for (let start = 0; start < bytes.length; start += PIECE_BYTES) {
        const piece = bytes.subarray(start, start + PIECE_BYTES);
        await put(LITTLE_ENDIAN ? piece : Buffer.from(piece).swap32());
      }
    }
    await writeFully(handle, hash.digest(), position);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some network file systems cannot fsync a directory; their rename is durable by itself.
    if (!['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    await handle.close();
  }
}

async function pruneCheckpoints(dir: string, keep: number, written: string): Promise<void> {
  // A checkpoint newer than the one just written (left by a run that was resumed from an older
  // one) still counts as newer; the one just written stays even so, being the one resumed from.
  const stale = (await listCheckpoints(dir)).slice(keep).filter((file) => file.path !== written);
  for (const file of stale) {
    try {
      await rm(file.path, { force: true });
    } catch (cause) {
      throw new CheckpointError(`wrote ${written} but could not delete the older checkpoint ${file.path}: ${describeCause(cause)}`, {
        cause, hint: `check the permissions of ${dir}; old checkpoints will fill the disk otherwise`,
      });
    }
  }
}

/** The checkpoints in dir, newest (highest step) first; [] if dir does not exist. Ignores temporary files and unrelated files. */
export async function listCheckpoints(dir: string): Promise<CheckpointFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CheckpointError(`could not list the checkpoints in ${dir}: ${describeCause(cause)}`, { cause, hint: `check that ${dir} is a readable directory` });
  }
  // By name alone: Lustre and some NFS servers report no file types in directory listings.
  const files: CheckpointFile[] = [];
  for (const name of names) {
    const step = stepOfFileName(name);
    if (step !== undefined) files.push({ step, path: join(dir, name) });
  }
  return files.sort((a, b) => b.step - a.step);
}

/** Reads and verifies one; throws CorruptCheckpointError (a CheckpointError, phase 'checkpoint') naming the file and what is wrong. */
/**
 * writeCheckpoint on a thread of its own: the arrays are moved there (transferred, not copied),
 * so they must not be used after write(). One write at a time is the caller's to keep.
 */
export class CheckpointWriter {
  private worker: Worker | undefined;
  private next = 0;
  private readonly pending = new Map<number, { resolve(path: string): void; reject(error: Error): void }>();

  write(dir: string, state: CheckpointState, options: { keep: number }): Promise<string> {
    const worker = this.start();
    const id = this.next++;
    // Only arrays that own their whole buffer move; a view into a larger one is copied.
    const buffers = [...new Set(Object.values(state.arrays).filter((values) => values.byteOffset === 0 && values.byteLength === values.buffer.byteLength)
      .map((values) => values.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    return new Promise<string>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, dir, state, keep: options.keep } satisfies WriteRequest, buffers);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./writer-thread.js', import.meta.url));
    worker.on('message', (reply: WriteReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) waiting?.reject(new CheckpointError(reply.error.message, { hint: reply.error.hint }));
      else waiting?.resolve(reply.path);
    });
    worker.on('error', (error) => this.failAll(new CheckpointError(`the checkpoint writer's thread failed: ${error.message}`, { cause: error, hint: WRITE_HINT })));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new CheckpointError(`the checkpoint writer's thread exited (status ${code})`, { hint: WRITE_HINT }));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}

/**
 * Moves the checkpoints of steps after `step` into `<dir>/superseded-<time>/`, where a later
 * resume does not look: a run that starts afresh (or from a file) in a directory that holds an
 * older run's checkpoints must not be resumed from those. Returns the steps moved.
 */
export async function supersedeCheckpoints(dir: string, step: number, now = new Date()): Promise<{ steps: number[]; to: string }> {
  const later = (await listCheckpoints(dir)).filter((file) => file.step > step);
  const to = join(dir, `superseded-${now.toISOString().replace(/[:.]/g, '-')}`);
  if (later.length === 0) return { steps: [], to };
  try {
    await mkdir(to, { recursive: true });
    for (const file of later) await rename(file.path, join(to, basename(file.path)));
    await syncDirectory(dir);
  } catch (cause) {
    throw new CheckpointError(`could not move the older run's checkpoints out of ${dir}: ${describeCause(cause)}`, {
      cause, hint: `move or delete the checkpoints after step ${step} in ${dir} by hand, or use another --run-dir`,
    });
  }
  return { steps: later.map((file) => file.step).reverse(), to };
}

export async function readCheckpoint(path: string): Promise<CheckpointState> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    return await readContents(handle, path);
  } catch (cause) {
    if (cause instanceof HpcTrainError) throw cause;
    throw new CheckpointError(`could not read checkpoint ${path}: ${describeCause(cause)}`, { cause, hint: `check that ${path} is a readable file` });
  } finally {
    await handle?.close();
  }
}

async function readContents(handle: FileHandle, path: string): Promise<CheckpointState> {
  const fileBytes = (await handle.stat()).size;
  const prefix = Buffer.alloc(Math.min(PREFIX_BYTES, fileBytes));
  await readFully(handle, prefix, 0, path, fileBytes);
  const json = Buffer.alloc(decodePrefix(path, prefix, fileBytes));
  await readFully(handle, json, PREFIX_BYTES, path, fileBytes);
  const header = decodeHeader(path, json);
  const expectedBytes = header.dataEnd + CHECKSUM_BYTES;
  if (fileBytes < expectedBytes) throw truncated(path, fileBytes, expectedBytes);
  if (fileBytes > expectedBytes) throw trailingBytes(path, fileBytes, expectedBytes);

  // Every byte up to the checksum, in file order: padding into scratch, floats straight into the
  // arrays returned. Piece i + 1 is read while piece i is hashed.
  const arrays: [string, Float32Array][] = [];
  const pieces: { bytes: Uint8Array; position: number }[] = [];
  let position = PREFIX_BYTES + json.length;
  for (const { name, length, offset } of header.arrays) {
    if (offset > position) pieces.push({ bytes: new Uint8Array(offset - position), position });
    const values = new Float32Array(length);
    arrays.push([name, values]);
    const bytes = bytesOf(values);
    for (let start = 0; start < bytes.length; start += PIECE_BYTES) pieces.push({ bytes: bytes.subarray(start, start + PIECE_BYTES), position: offset + start });
    position = offset + bytes.length;
  }
  const hash = createHash('sha256').update(prefix).update(json);
  let next = pieces.length ? readFully(handle, pieces[0]!.bytes, pieces[0]!.position, path, fileBytes) : undefined;
  for (let i = 0; i < pieces.length; i++) {
    await next;
    const following = pieces[i + 1];
    next = following && readFully(handle, following.bytes, following.position, path, fileBytes);
    hash.update(pieces[i]!.bytes);
  }
  const checksum = Buffer.alloc(CHECKSUM_BYTES);
  await readFully(handle, checksum, header.dataEnd, path, fileBytes);
  if (!checksum.equals(hash.digest())) throw checksumMismatch(path);
  if (!LITTLE_ENDIAN) for (const [, values] of arrays) Buffer.from(values.buffer, values.byteOffset, values.byteLength).swap32();
  return { step: header.step, meta: header.meta, arrays: Object.fromEntries(arrays) };
}

async function readFully(handle: FileHandle, bytes: Uint8Array, position: number, path: string, fileBytes: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
    // Shorter than fstat said: it shrank while being read.
    if (bytesRead === 0) throw truncated(path, position + done, fileBytes);
    done += bytesRead;
  }
}

/**
 * The newest checkpoint that reads and verifies; each corrupt one newer than it is reported
 * through `log` (one line naming the file and the reason) and skipped. undefined when there is none.
 */
export async function loadNewestCheckpoint(dir: string, log: (line: string) => void): Promise<{ state: CheckpointState; path: string } | undefined> {
  const files = await listCheckpoints(dir);
  for (const [index, file] of files.entries()) {
    try {
      return { state: await readCheckpoint(file.path), path: file.path };
    } catch (error) {
      // Deleted between listing and reading, by another run's pruning: not worth a word.
      if (error instanceof CheckpointError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') continue;
      if (!(error instanceof CorruptCheckpointError)) throw error;
      const previous = files[index + 1];
      log(`${error.message}; ${previous ? `using the previous one, ${basename(previous.path)}, if it verifies` : 'there is no older checkpoint to use'}`);
    }
  }
  return undefined;
}

/** The bytes of a float array, in place. */
function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Node's system errors name the call, the code and the path: "ENOSPC: no space left on device, write". */
function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
