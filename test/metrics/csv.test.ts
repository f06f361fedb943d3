import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OptionsError } from '../../src/errors.js';
import { readStepCsv, type RecordCsv, type StepRecord, STEP_COLUMNS, StepCsv } from '../../src/metrics/csv.js';
import { stepRecord } from './records.js';

describe('step CSV', () => {
  let dir: string;
  let path: string;
  const opened: RecordCsv<StepRecord>[] = [];
  const open = (options?: { resumeStep?: number }) => {
    const csv = StepCsv.open(path, options);
    opened.push(csv);
    return csv;
  };
  const lines = () => readFileSync(path, 'utf8').split('\n');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hpctrain-metrics-'));
    path = join(dir, 'runs', 'job-1', 'steps.csv');
  });

  afterEach(() => {
    for (const csv of opened.splice(0)) csv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names its columns in snake_case, in the order of StepRecord', () => {
    assert.deepEqual(STEP_COLUMNS, [
      'step', 'epoch', 'images', 'loss', 'top1', 'learning_rate', 'grad_norm', 'data_ms', 'compute_ms', 'comm_ms',
      'step_ms', 'images_per_second', 'slowest_rank', 'slowest_step_ms',
    ]);
  });

  it('writes a header and one row per step that read back as the records, in a directory it creates', () => {
    const records = [
      stepRecord(1, { loss: 0.1 + 0.2, learningRate: 1e-7 }),
      stepRecord(2, { loss: NaN, gradNorm: Infinity }),
      stepRecord(3, { images: 123456789012, epoch: 1.25 }),
    ];
    const csv = open();
    for (const record of records) csv.write(record);
    csv.close();
    assert.equal(csv.path, path);
    assert.equal(lines()[0], STEP_COLUMNS.join(','));
    assert.equal(lines()[1], '1,0.25,48,0.30000000000000004,0.01,1e-7,2.5,4,201,41,251,189,1,261');
    assert.equal(lines().length, 1 + records.length + 1, 'a header, the rows, and a final newline');
    assert.deepEqual(readStepCsv(path), records);
  });

  it('has each row on disk before write() returns', () => {
    const csv = open();
    assert.deepEqual(readStepCsv(path), [], 'the header is there before the first row');
    for (let step = 1; step <= 3; step++) {
      csv.write(stepRecord(step));
      // Another process (or a crash now) sees what this read sees: no buffer is left in this one.
      assert.deepEqual(readStepCsv(path).map((r) => r.step), Array.from({ length: step }, (_, i) => i + 1));
    }
  });

  it('reopened at a checkpoint, drops the rows of later steps and appends without a second header', () => {
    const first = open();
    for (let step = 1; step <= 5; step++) first.write(stepRecord(step));
    first.close();
    const resumed = open({ resumeStep: 3 });
    assert.deepEqual(readStepCsv(path).map((r) => r.step), [1, 2, 3], 'steps 4 and 5 are gone before the first write');
    resumed.write(stepRecord(4, { loss: 42 }));
    resumed.close();
    assert.deepEqual(readStepCsv(path), [stepRecord(1), stepRecord(2), stepRecord(3), stepRecord(4, { loss: 42 })]);
    assert.equal(lines().filter((line) => line === STEP_COLUMNS.join(',')).length, 1);
    assert.deepEqual(readdirSync(join(dir, 'runs', 'job-1')), ['steps.csv'], 'no temporary file is left');
  });

  it('reopened without a resume step, keeps every row', () => {
    const first = open();
    for (let step = 1; step <= 2; step++) first.write(stepRecord(step));
    first.close();
    const second = open();
    second.write(stepRecord(3));
    assert.deepEqual(readStepCsv(path).map((r) => r.step), [1, 2, 3]);
    assert.equal(lines()[0], STEP_COLUMNS.join(','));
    assert.equal(lines().filter((line) => line.startsWith('step,')).length, 1);
  });

  it('repairs a file that ends in a partial line (a crash mid-write) when it is reopened', () => {
    const first = open();
    for (let step = 1; step <= 3; step++) first.write(stepRecord(step));
    first.close();
    appendFileSync(path, '4,1,192,6.6,0.04,0.0');
    assert.deepEqual(readStepCsv(path).map((r) => r.step), [1, 2, 3], 'the reader leaves a partial line out');
    const resumed = open({ resumeStep: 10 });
    resumed.write(stepRecord(4));
    assert.deepEqual(readStepCsv(path), [1, 2, 3, 4].map((step) => stepRecord(step)));
    for (const line of lines().slice(1, -1)) assert.equal(line.split(',').length, STEP_COLUMNS.length, line);
  });

  it('drops lines that are no rows (a row cut short, the zeros a crashed file system leaves) when it is reopened', () => {
    const first = open();
    for (let step = 1; step <= 2; step++) first.write(stepRecord(step));
    first.close();
    appendFileSync(path, `3,0.75,14\n${'\0'.repeat(16)}\n`);
    assert.throws(() => readStepCsv(path), /steps\.csv:4: loss is undefined, not a number/);
    open().write(stepRecord(3));
    assert.deepEqual(readStepCsv(path), [1, 2, 3].map((step) => stepRecord(step)));
  });

  it('starts afresh in a file cut off inside its header, or empty', () => {
    mkdirSync(join(dir, 'runs', 'job-1'), { recursive: true });
    writeFileSync(path, 'step,epoch,ima');
    open().write(stepRecord(1));
    assert.equal(lines()[0], STEP_COLUMNS.join(','));
    assert.equal(lines().length, 3);
    assert.deepEqual(readStepCsv(path), [stepRecord(1)]);
    writeFileSync(path, '');
    open().write(stepRecord(2));
    assert.deepEqual(readStepCsv(path), [stepRecord(2)]);
  });

  it('refuses a file that is not a step CSV, and leaves it as it was', () => {
    writeFileSync(join(dir, 'other.csv'), 'name,value\na,1\n');
    assert.throws(() => StepCsv.open(join(dir, 'other.csv')), (error) =>
      error instanceof OptionsError && /other\.csv is not a step CSV/.test(error.message) && /another --run-dir/.test(error.hint ?? ''));
    assert.equal(readFileSync(join(dir, 'other.csv'), 'utf8'), 'name,value\na,1\n');
    assert.throws(() => readStepCsv(join(dir, 'other.csv')), /no column step, epoch/);
  });

  it('refuses a write after close()', () => {
    const csv = open();
    csv.close();
    csv.close();
    assert.throws(() => csv.write(stepRecord(1)), /write\(\) after close\(\)/);
    assert.ok(existsSync(path));
  });
});
