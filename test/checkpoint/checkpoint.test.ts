// Checkpoints on a real file system: the documented layout, round trips bit for bit, pruning,
// listing among foreign files, every kind of damage named, falling back past damaged ones, and
// what a crash mid-write leaves behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CheckpointState, CheckpointWriter, listCheckpoints, loadNewestCheckpoint, readCheckpoint, writeCheckpoint,
} from '../../src/checkpoint/checkpoint.js';
import { CheckpointError, CorruptCheckpointError } from '../../src/errors.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** Odd lengths (so padding is needed), an empty array, and values a careless copy would change. */
function sampleState(step: number, seed = step): CheckpointState {
  const special = new Float32Array(7);
  new Uint32Array(special.buffer).set([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x3f800000]);
  return {
    step,
    meta: { epoch: 3, position: { shard: 2, offset: 1234 }, rng: [1, 2, 3, 4], strategy: 'ring', note: 'ünïcode ✓' },
    arrays: {
      weights: randomFloats(seededRandom(seed), 1001),
      'rmsprop.ms': randomFloats(seededRandom(seed + 1), 3),
      special,
      empty: new Float32Array(0),
      ema: randomFloats(seededRandom(seed + 2), 17),
    },
  };
}

function assertSameState(actual: CheckpointState, expected: CheckpointState): void {
  assert.equal(actual.step, expected.step);
  assert.deepEqual(actual.meta, expected.meta);
  assert.deepEqual(Object.keys(actual.arrays), Object.keys(expected.arrays));
  for (const [name, values] of Object.entries(expected.arrays)) {
    const got = actual.arrays[name]!;
    assert.ok(got instanceof Float32Array, `${name} is a Float32Array`);
    assert.equal(got.length, values.length, `${name}: length`);
    assert.ok(bytesOf(got).equals(bytesOf(values)), `${name}: bytes differ`);
  }
}

/** The header as the format documents it, read without the module under test. */
async function headerOf(path: string): Promise<{ headerBytes: number; arrays: { name: string; length: number; offset: number }[] }> {
  const bytes = await readFile(path);
  const headerBytes = bytes.readUInt32LE(12);
  return { headerBytes, ...JSON.parse(bytes.subarray(16, 16 + headerBytes).toString('utf8')) };
}

async function flipByte(path: string, offset: number, mask = 0x01): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset]! ^= mask;
  await writeFile(path, bytes);
}

/** A file in the documented layout with any header text, checksummed correctly. */
async function writeRaw(path: string, json: string, data: Buffer = Buffer.alloc(0)): Promise<void> {
  const headerBytes = Math.ceil((16 + Buffer.byteLength(json)) / 64) * 64 - 16;
  const prefix = Buffer.alloc(16 + headerBytes, ' ');
  prefix.write('HPCTCKPT', 0, 'latin1');
  prefix.writeUInt32LE(1, 8);
  prefix.writeUInt32LE(headerBytes, 12);
  prefix.write(json, 16, 'utf8');
  const body = Buffer.concat([prefix, data]);
  await writeFile(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

async function assertCorrupt(path: string, reason: RegExp): Promise<void> {
  await assert.rejects(readCheckpoint(path), (error: unknown) => {
    assert.ok(error instanceof CorruptCheckpointError, `a CorruptCheckpointError, not ${String(error)}`);
    assert.ok(error instanceof CheckpointError);
    assert.equal(error.phase, 'checkpoint');
    assert.ok(error.message.includes(path), `names the file: ${error.message}`);
    assert.match(error.reason, reason);
    assert.ok(error.hint, 'says what to try');
    return true;
  });
}

describe('checkpoints', function () {
  this.timeout(120_000);
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hpctrain-checkpoint-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('round-trips step, meta and every array bit for bit, creating the directory', async () => {
    const dir = join(root, 'run', 'checkpoints');
    const state = sampleState(1234);
    const path = await writeCheckpoint(dir, state, { keep: 3 });
    assert.equal(path, join(dir, 'ckpt-000001234.hpct'));
    assertSameState(await readCheckpoint(path), state);
  });

  it('lays the file out as documented: magic, version, padded JSON header, aligned float32 LE, SHA-256 at the end', async () => {
    const state = sampleState(7);
    const path = await writeCheckpoint(root, state, { keep: 1 });
    const bytes = await readFile(path);
    assert.equal(bytes.subarray(0, 8).toString('latin1'), 'HPCTCKPT');
    assert.equal(bytes.readUInt32LE(8), 1);
    const header = JSON.parse(bytes.subarray(16, 16 + bytes.readUInt32LE(12)).toString('utf8'));
    assert.equal((16 + bytes.readUInt32LE(12)) % 64, 0, 'the data starts aligned');
    assert.equal(header.step, 7);
    assert.deepEqual(header.meta, state.meta);
    assert.deepEqual(header.arrays.map((a: { name: string }) => a.name), Object.keys(state.arrays));
    let end = 0;
    for (const { name, length, offset } of header.arrays as { name: string; length: number; offset: number }[]) {
      const values = state.arrays[name]!;
      assert.equal(offset % 64, 0, `${name} is aligned`);
      assert.ok(offset >= end, `${name} does not overlap the one before`);
      assert.equal(length, values.length);
      for (let i = 0; i < length; i++) assert.ok(Object.is(bytes.readFloatLE(offset + 4 * i), values[i]) || Number.isNaN(values[i]), `${name}[${i}]`);
      end = offset + 4 * length;
    }
    assert.equal(bytes.length, end + 32);
    assert.ok(createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end)));
  });

  it('keeps the newest K after each write, and a second write of a step replaces the first', async () => {
    for (const step of [1, 2, 3, 4, 5]) await writeCheckpoint(root, sampleState(step), { keep: 3 });
    assert.deepEqual((await listCheckpoints(root)).map((f) => f.step), [5, 4, 3]);
    assert.deepEqual((await readdir(root)).sort(), ['ckpt-000000003.hpct', 'ckpt-000000004.hpct', 'ckpt-000000005.hpct']);

    const again = sampleState(4, 99);
    await writeCheckpoint(root, again, { keep: 3 });
    assert.deepEqual((await listCheckpoints(root)).map((f) => f.step), [5, 4, 3]);
    assertSameState(await readCheckpoint(join(root, 'ckpt-000000004.hpct')), again);

    await writeCheckpoint(root, sampleState(6), { keep: 1 });
    assert.deepEqual(await readdir(root), ['ckpt-000000006.hpct']);
  });

  it('never prunes the checkpoint it just wrote, even below a newer one left by an earlier run', async () => {
    await writeCheckpoint(root, sampleState(100), { keep: 1 });
    await writeCheckpoint(root, sampleState(50), { keep: 1 });
    assert.deepEqual((await listCheckpoints(root)).map((f) => f.step), [100, 50]);
  });

  it('refuses keep < 1, a bad step and meta that is not JSON, and writes nothing', async () => {
    const dir = join(root, 'never');
    for (const keep of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(writeCheckpoint(dir, sampleState(1), { keep }), (error: unknown) => {
        assert.ok(error instanceof CheckpointError && error.phase === 'checkpoint', String(error));
        assert.match(error.message, new RegExp(`cannot keep ${keep} checkpoints`));
        return true;
      });
    }
    await assert.rejects(writeCheckpoint(dir, { ...sampleState(1), step: -1 }, { keep: 1 }), CheckpointError);
    await assert.rejects(writeCheckpoint(dir, { ...sampleState(1), meta: { big: 1n } }, { keep: 1 }), /meta is not JSON/);
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  it('lists checkpoints newest first by step, among temporary, mis-padded and unrelated files', async () => {
    const names = [
      'ckpt-000000010.hpct', 'notes.txt', '.ckpt-000000200.hpct.4242.tmp', 'ckpt-000000009.hpct', 'ckpt-1000000000.hpct',
      'ckpt-000000300.hpct.tmp', 'ckpt-00000001.hpct', 'ckpt-0000000005.hpct', 'ckpt-abc.hpct', 'ckpt-000000100.hpct', 'ckpt-000000011.hpc',
    ];
    for (const name of names) await writeFile(join(root, name), 'x');
    const files = await listCheckpoints(root);
    assert.deepEqual(files.map((f) => f.step), [1_000_000_000, 100, 10, 9]);
    assert.equal(files[1]!.path, join(root, 'ckpt-000000100.hpct'));
    assert.deepEqual(await listCheckpoints(join(root, 'missing')), []);
  });

  it('names a flipped byte anywhere (data, padding, header, checksum) as a checksum mismatch', async () => {
    const path = await writeCheckpoint(root, sampleState(3), { keep: 1 });
    const { headerBytes, arrays } = await headerOf(path);
    const weights = arrays.find((a) => a.name === 'weights')!;
    const after = arrays[arrays.indexOf(weights) + 1]!;
    const size = (await stat(path)).size;
    const step = (await readFile(path)).indexOf('"step":3') + 7;
    // The header's changes keep it valid JSON of the right layout ("step":2, a tab for a space),
    // so only the checksum can tell.
    const places: Record<string, [number, number]> = {
      data: [weights.offset + 2001, 0x01], padding: [after.offset - 1, 0x01], 'header step': [step, 0x01],
      'header padding': [16 + headerBytes - 1, 0x20 ^ 0x09], checksum: [size - 5, 0x80],
    };
    assert.ok(after.offset - 1 >= weights.offset + 4 * weights.length, 'the padding byte lies between two arrays');
    for (const [where, [offset, mask]] of Object.entries(places)) {
      await flipByte(path, offset, mask);
      await assertCorrupt(path, /^checksum mismatch/).catch((error: Error) => assert.fail(`${where}: ${error.message}`));
      await flipByte(path, offset, mask);
      await readCheckpoint(path);
    }
  });

  it('names truncation at every depth', async () => {
    const path = await writeCheckpoint(root, sampleState(3), { keep: 1 });
    const whole = await readFile(path);
    const { headerBytes, arrays } = await headerOf(path);
    for (const length of [whole.length - 1, arrays[1]!.offset + 5, 16 + headerBytes + 10, 16 + headerBytes - 3, 12, 4, 0]) {
      await writeFile(path, whole.subarray(0, length));
      await assertCorrupt(path, /^truncated/).catch((error: Error) => assert.fail(`cut at ${length}: ${error.message}`));
    }
  });

  it('names garbage, a wrong magic and an unsupported version', async () => {
    const garbage = join(root, 'ckpt-000000001.hpct');
    await writeFile(garbage, Buffer.from(randomFloats(seededRandom(1), 300).buffer));
    await assertCorrupt(garbage, /^bad magic/);
    await writeFile(garbage, 'hello, not a checkpoint\n');
    await assertCorrupt(garbage, /^bad magic/);

    const path = await writeCheckpoint(root, sampleState(2), { keep: 5 });
    await flipByte(path, 0);
    await assertCorrupt(path, /^bad magic/);
    await flipByte(path, 0);
    const bytes = await readFile(path);
    bytes.writeUInt32LE(2, 8);
    await writeFile(path, bytes);
    await assertCorrupt(path, /^unsupported format version 2 \(this hpctrain reads version 1\)/);
  });

  it('names a malformed header that passes its checksum, and bytes after the checksum', async () => {
    const path = join(root, 'ckpt-000000001.hpct');
    const cases: [string, RegExp][] = [
      ['{"step":1,"arrays":[', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['{"step":-1,"arrays":[],"meta":{}}', /step -1/],
      ['{"step":1,"arrays":[],"meta":[]}', /meta is not a JSON object/],
      ['{"step":1,"arrays":{},"meta":{}}', /arrays is not a list/],
      ['{"step":1,"arrays":[{"name":"a","length":0,"offset":64},{"name":"a","length":0,"offset":64}],"meta":{}}', /two arrays are named "a"/],
      ['{"step":1,"arrays":[{"name":"a","length":1.5,"offset":64}],"meta":{}}', /length 1.5/],
      ['{"step":1,"arrays":[{"name":"a","length":1,"offset":64}],"meta":{}}', /offset 64; the layout puts it at 128/],
    ];
    for (const [json, reason] of cases) {
      await writeRaw(path, json, Buffer.alloc(4));
      await assertCorrupt(path, /^malformed header/);
      await assertCorrupt(path, reason);
    }
    await writeRaw(path, '{"step":1,"arrays":[{"name":"a","length":1,"offset":128}],"meta":{}}', Buffer.from(new Float32Array([2.5]).buffer));
    assert.deepEqual([...(await readCheckpoint(path)).arrays.a!], [2.5], 'the hand-made file itself is valid');
    await writeFile(path, Buffer.concat([await readFile(path), Buffer.from('extra')]));
    await assertCorrupt(path, /^5 bytes after the checksum/);
  });

  it('loads the newest checkpoint that verifies, logging each damaged one it skips', async () => {
    for (const step of [1, 2, 3, 4]) await writeCheckpoint(root, sampleState(step), { keep: 10 });
    const { arrays } = await headerOf(join(root, 'ckpt-000000004.hpct'));
    await flipByte(join(root, 'ckpt-000000004.hpct'), arrays[0]!.offset + 100);
    await truncate(join(root, 'ckpt-000000003.hpct'), 1000);
    const lines: string[] = [];
    const loaded = await loadNewestCheckpoint(root, (line) => lines.push(line));
    assert.equal(loaded?.path, join(root, 'ckpt-000000002.hpct'));
    assertSameState(loaded!.state, sampleState(2));
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0]!, /ckpt-000000004\.hpct is unusable: checksum mismatch .*; using the previous one, ckpt-000000003\.hpct/);
    assert.match(lines[1]!, /ckpt-000000003\.hpct is unusable: truncated .*; using the previous one, ckpt-000000002\.hpct/);
  });

  it('loads nothing from a missing, an empty or an all-damaged directory', async () => {
    const lines: string[] = [];
    assert.equal(await loadNewestCheckpoint(join(root, 'missing'), (line) => lines.push(line)), undefined);
    assert.equal(await loadNewestCheckpoint(root, (line) => lines.push(line)), undefined);
    assert.equal(lines.length, 0, lines.join('\n'));
    await writeFile(join(root, 'ckpt-000000001.hpct'), 'garbage');
    assert.equal(await loadNewestCheckpoint(root, (line) => lines.push(line)), undefined);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /ckpt-000000001\.hpct is unusable: bad magic .*; there is no older checkpoint to use/);
  });

  it('is not confused by a temporary file a crash left behind, and writes over it', async () => {
    await writeCheckpoint(root, sampleState(1), { keep: 5 });
    const whole = await readFile(await writeCheckpoint(root, sampleState(2), { keep: 5 }));
    const leftover = join(root, `.ckpt-000000003.hpct.${process.pid}.tmp`);
    await writeFile(leftover, whole.subarray(0, whole.length >> 1));
    assert.deepEqual((await listCheckpoints(root)).map((f) => f.step), [2, 1]);
    const lines: string[] = [];
    assert.equal((await loadNewestCheckpoint(root, (line) => lines.push(line)))?.state.step, 2);
    assert.deepEqual(lines, []);

    await writeCheckpoint(root, sampleState(3), { keep: 5 });
    assert.deepEqual((await readdir(root)).sort(), ['ckpt-000000001.hpct', 'ckpt-000000002.hpct', 'ckpt-000000003.hpct']);
    assertSameState(await readCheckpoint(join(root, 'ckpt-000000003.hpct')), sampleState(3));
  });

  it('a write that fails removes its temporary file and leaves the checkpoints before it intact', async () => {
    await writeCheckpoint(root, sampleState(1), { keep: 5 });
    // A directory where the new checkpoint should go makes the final rename fail.
    await mkdir(join(root, 'ckpt-000000002.hpct', 'in-the-way'), { recursive: true });
    await assert.rejects(writeCheckpoint(root, sampleState(2), { keep: 1 }), (error: unknown) => {
      assert.ok(error instanceof CheckpointError && !(error instanceof CorruptCheckpointError), String(error));
      assert.match(error.message, new RegExp(`could not write checkpoint step 2 to ${root}: E`));
      assert.match(error.hint ?? '', /the checkpoints before it are intact/);
      return true;
    });
    assert.deepEqual((await readdir(root)).sort(), ['ckpt-000000001.hpct', 'ckpt-000000002.hpct']);
    await rm(join(root, 'ckpt-000000002.hpct'), { recursive: true });
    assertSameState((await loadNewestCheckpoint(root, (line) => assert.fail(line)))!.state, sampleState(1));
  });

  it('round-trips 96 MB in three arrays of 8M floats', async () => {
    const length = 8 * 1024 * 1024;
    const arrays: Record<string, Float32Array> = {};
    for (const [index, name] of ['weights', 'rmsprop.ms', 'rmsprop.mom'].entries()) {
      const values = new Float32Array(length);
      const random = seededRandom(index);
      for (let i = 0; i < length; i++) values[i] = random() * 2 - 1;
      arrays[name] = values;
    }
    const state = { step: 123_456, meta: { epoch: 40 }, arrays };
    const path = await writeCheckpoint(root, state, { keep: 2 });
    assert.ok((await stat(path)).size > 3 * 4 * length);
    assertSameState(await readCheckpoint(path), state);
  });

  it('writes on a thread of its own: the checkpoint reaches the disk while this thread is busy, as it is in a training step', async () => {
    const length = 16 * 1024 * 1024;
    const weights = randomFloats(seededRandom(3), length);
    const expected = { step: 7, meta: { epoch: 1 }, arrays: { weights: weights.slice(), shared: Float32Array.of(1, 2, 3) } };
    const view = new Float32Array(8).fill(5).subarray(2, 5);
    const writer = new CheckpointWriter();
    try {
      const written = writer.write(root, { step: 7, meta: { epoch: 1 }, arrays: { weights, shared: Float32Array.of(1, 2, 3), view } }, { keep: 2 });
      // The whole-buffer arrays moved to the writer; a view into a larger buffer was copied.
      assert.equal(weights.length, 0, 'the weights were copied, not moved');
      assert.deepEqual([...view], [5, 5, 5]);
      // Busy, as a step is: no event of this thread's runs until the file is there.
      const path = join(root, 'ckpt-000000007.hpct');
      const give = Date.now() + 60_000;
      while (!existsSync(path) && Date.now() < give) { /* a step's work */ }
      assert.ok(existsSync(path), 'the checkpoint did not reach the disk while this thread was busy');
      assert.equal(await written, path);
      const read = await readCheckpoint(path);
      assertSameState({ ...read, arrays: { weights: read.arrays.weights!, shared: read.arrays.shared! } }, expected);
      assert.deepEqual([...read.arrays.view!], [5, 5, 5]);
      // A failure on the thread comes back as the same CheckpointError.
      await assert.rejects(writer.write(root, { step: -1, meta: {}, arrays: {} }, { keep: 1 }), (e: unknown) => e instanceof CheckpointError && /step -1/.test(e.message));
    } finally {
      await writer.close();
    }
  });
});
