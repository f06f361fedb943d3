import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseImageExample } from '../../src/data/example-proto.js';
import { crc32c, indexTfRecordFile, maskCrc, readTfRecord } from '../../src/data/tfrecord.js';
import { DataError } from '../../src/errors.js';
import { crc32cBitwise, encodeExample, imagenetExample, makeTempDir, removeDir, writeTfRecordFile } from './helpers.js';

describe('data/tfrecord', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it('computes CRC-32C and TensorFlow\'s mask', () => {
    // The check value of CRC-32C (RFC 3720, B.4), and the helpers' independent implementation.
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32cBitwise(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 255));
    assert.equal(crc32c(bytes), crc32cBitwise(bytes));
    assert.equal(maskCrc(0), 0xa282ead8);
    assert.equal(maskCrc(0xe3069283), ((((0xe3069283 >>> 15) | (0xe3069283 << 17)) >>> 0) + 0xa282ead8) >>> 0);
  });

  it('indexes and reads back records written in the TFRecord format', () => {
    const records = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(70000, 9), Buffer.from('last')];
    const path = join(dir, 'train-00000-of-00001');
    writeTfRecordFile(path, records);
    const index = indexTfRecordFile(path);
    assert.deepEqual(index.lengths, [5, 0, 70000, 4]);
    assert.deepEqual(index.offsets, [0, 21, 37, 70053]);
    records.forEach((record, i) => assert.deepEqual(Buffer.from(readTfRecord(path, index.offsets[i]!, index.lengths[i]!)), record));
  });

  it('detects a damaged data CRC when the record is read', () => {
    const path = join(dir, 'shard');
    writeTfRecordFile(path, [Buffer.from('good record'), Buffer.from('damaged record')]);
    const bytes = readFileSync(path);
    bytes[27 + 12 + 3] ^= 0x01; // one bit of the second record's data
    writeFileSync(path, bytes);
    const index = indexTfRecordFile(path);
    assert.equal(Buffer.from(readTfRecord(path, index.offsets[0]!, index.lengths[0]!)).toString(), 'good record');
    assert.throws(() => readTfRecord(path, index.offsets[1]!, index.lengths[1]!), /data CRC does not match/);
  });

  it('refuses a shard whose length header is damaged or that is cut short, naming the byte', () => {
    const path = join(dir, 'shard');
    writeTfRecordFile(path, [Buffer.from('one'), Buffer.from('two')]);
    const good = readFileSync(path);
    const damaged = Buffer.from(good);
    damaged[19] ^= 0x10; // the second record's length
    writeFileSync(path, damaged);
    assert.throws(() => indexTfRecordFile(path), (e: unknown) => e instanceof DataError && e.phase === 'data' && /at byte 19 \(record 1\).*length's CRC/.test(e.message));
    writeFileSync(path, good.subarray(0, good.length - 2));
    assert.throws(() => indexTfRecordFile(path), (e: unknown) => e instanceof DataError && /runs past the end/.test(e.message));
    writeFileSync(path, good.subarray(0, 19 + 5));
    assert.throws(() => indexTfRecordFile(path), (e: unknown) => e instanceof DataError && /ends inside a record header/.test(e.message));
  });

  it('parses image/encoded and image/class/label out of a tf.train.Example', () => {
    const jpeg = Buffer.from([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
    const parsed = parseImageExample(imagenetExample(jpeg, 417));
    assert.deepEqual(Buffer.from(parsed.encoded), jpeg);
    assert.equal(parsed.label, 417);
    // An unpacked int64 list and a large label.
    const unpacked = parseImageExample(encodeExample({ 'image/class/label': { int64: 300000, packed: false }, 'image/encoded': { bytes: jpeg } }));
    assert.equal(unpacked.label, 300000);
    assert.throws(() => parseImageExample(encodeExample({ 'image/encoded': { bytes: jpeg } })), /no 'image\/class\/label'/);
    assert.throws(() => parseImageExample(encodeExample({ 'image/class/label': { int64: 1 } })), /no 'image\/encoded'/);
    assert.throws(() => parseImageExample(Buffer.from([0x0a, 0x50, 1, 2])), /not a valid tf.train.Example/);
  });
});
