// Resuming from checkpoints written before the optimizers were named: RMSProp's slots stored as
// rmsprop.ms and rmsprop.mom, and no optimizer in the meta.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { CheckpointError } from '../../src/errors.js';
import { layoutDigest, type ParameterLayout } from '../../src/compute/parameters.js';
import { RunRecords } from '../../src/train/run-records.js';
import { makeTempDir, removeDir } from '../data/helpers.js';

const LAYOUT: ParameterLayout = {
  entries: [{ name: 'dense/kernel', shape: [2, 2], offset: 0, length: 4, trainable: true }, { name: 'bn/moving_mean', shape: [1], offset: 4, length: 1, trainable: false }],
  trainableLength: 4,
  totalLength: 5,
};

function records(runDir: string, optimizer: 'rmsprop' | 'adamw', lines: string[]): RunRecords {
  return new RunRecords({
    runDir, resume: 'auto', keepCheckpoints: 3, checkpointEverySteps: 0, checkpointEveryMinutes: 0, meta: { globalBatch: 2, seed: 1, strategy: 'allreduce' },
    optimizer, maxSteps: 10, globalBatch: 2, logEvery: 1, terminal: false, stdout: () => {}, log: (line) => lines.push(line),
  });
}

describe('run records: resuming older checkpoints', () => {
  let dir: string;
  before(async () => {
    dir = makeTempDir('hpctrain-records-');
    await writeCheckpoint(join(dir, 'checkpoints'), {
      step: 3,
      meta: { layout: layoutDigest(LAYOUT), globalBatch: 2, seed: 1, strategy: 'allreduce', step: 3 },
      arrays: { weights: Float32Array.of(1, 2, 3, 4, 5), 'rmsprop.ms': Float32Array.of(0.1, 0.2, 0.3, 0.4), 'rmsprop.mom': Float32Array.of(-1, -2, -3, -4) },
    }, { keep: 3 });
  });
  after(() => removeDir(dir));

  it('takes rmsprop.ms and rmsprop.mom for RMSProp\'s state', async () => {
    const lines: string[] = [];
    const resumed = await records(dir, 'rmsprop', lines).resume(LAYOUT);
    assert.equal(resumed?.step, 3);
    assert.deepEqual([...resumed!.weights], [1, 2, 3, 4, 5]);
    assert.deepEqual(Object.keys(resumed!.state), ['ms', 'mom']);
    assert.deepEqual([...resumed!.state.mom!], [-1, -2, -3, -4]);
    assert.ok(lines.some((line) => /resuming from .*ckpt-000000003\.hpct: step 3/.test(line)), lines.join('\n'));
  });

  it('refuses them to another optimizer, saying which one wrote them', async () => {
    await assert.rejects(records(dir, 'adamw', []).resume(LAYOUT), (error: unknown) =>
      error instanceof CheckpointError && /holds the state of optimizer rmsprop, and this run trains with adamw/.test(error.message) && /--optimizer rmsprop/.test(error.hint ?? ''));
  });
});

describe('run records: checkpoints of earlier runs, and one checkpoint at a time', () => {
  let dir: string;
  const write = (runDir: string, step: number) => writeCheckpoint(join(runDir, 'checkpoints'), {
    step,
    meta: { layout: layoutDigest(LAYOUT), globalBatch: 2, seed: 1, strategy: 'allreduce', step, optimizer: 'rmsprop' },
    arrays: { weights: Float32Array.of(step, 2, 3, 4, 5), 'optimizer.ms': Float32Array.of(0.1, 0.2, 0.3, 0.4), 'optimizer.mom': Float32Array.of(-1, -2, -3, -4) },
  }, { keep: 5 });
  const withResume = (runDir: string, resume: string, lines: string[], checkpointEverySteps = 0) => new RunRecords({
    runDir, resume, keepCheckpoints: 3, checkpointEverySteps, checkpointEveryMinutes: 0, meta: { globalBatch: 2, seed: 1, strategy: 'allreduce' },
    optimizer: 'rmsprop', maxSteps: 10, globalBatch: 2, logEvery: 1, terminal: false, stdout: () => {}, log: (line) => lines.push(line),
  });
  beforeEach(() => { dir = makeTempDir('hpctrain-records-'); });
  afterEach(() => removeDir(dir));

  it('--resume never moves every checkpoint of the directory aside, so that a later --resume auto does not take the older run\'s', async () => {
    await write(dir, 3);
    await write(dir, 6);
    const lines: string[] = [];
    assert.equal(await withResume(dir, 'never', lines).resume(LAYOUT), undefined);
    assert.ok(lines.some((line) => /--resume never starts afresh: moved the checkpoints of an earlier run \(step 3, 6\) to .*superseded-/.test(line)), lines.join('\n'));
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')).filter((name) => name.endsWith('.hpct')), []);
    assert.equal(await withResume(dir, 'auto', []).resume(LAYOUT), undefined, 'auto found a superseded checkpoint');
  });

  it('--resume FILE moves aside the checkpoints after its step, and keeps those before', async () => {
    await write(dir, 3);
    await write(dir, 6);
    await write(dir, 9);
    const lines: string[] = [];
    const resumed = await withResume(dir, join(dir, 'checkpoints', 'ckpt-000000006.hpct'), lines).resume(LAYOUT);
    assert.equal(resumed?.step, 6);
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')).filter((name) => name.endsWith('.hpct')).sort(), ['ckpt-000000003.hpct', 'ckpt-000000006.hpct']);
    assert.ok(lines.some((line) => /\(step 6\): moved the checkpoints of an earlier run \(step 9\)/.test(line)), lines.join('\n'));
    assert.equal((await withResume(dir, 'auto', []).resume(LAYOUT))?.step, 6);
  });

  it('skips a checkpoint that comes due while the one before is still being written, saying so; the last one waits its turn', async () => {
    const lines: string[] = [];
    const records = withResume(dir, 'auto', lines, 1);
    await records.resume(LAYOUT);
    records.begin(0);
    const state = { ms: new Float32Array(4), mom: new Float32Array(4) };
    assert.equal(records.checkpointDue(1, 10), true);
    records.checkpoint(1, Float32Array.of(1, 2, 3, 4, 5), state, undefined);
    // The write has not finished: it needs the file system, and this is the same tick.
    assert.equal(records.checkpointDue(2, 10), false);
    assert.equal(records.checkpointDue(3, 10), false);
    assert.equal(lines.filter((line) => /checkpoint of step 2 skipped: the one of step 1 is still being written/.test(line)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((line) => /skipped/.test(line)).length, 1, 'said once per checkpoint in flight');
    assert.equal(records.checkpointDue(10, 10), true, 'the last checkpoint is never skipped');
    await records.flush();
    assert.equal(records.checkpointDue(4, 10), true);
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')), ['ckpt-000000001.hpct']);
  });
});
