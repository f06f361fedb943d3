// Resuming from checkpoints written before the optimizers were named: RMSProp's slots stored as
// rmsprop.ms and rmsprop.mom, and no optimizer in the meta.
import assert from 'node:assert/strict';
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
