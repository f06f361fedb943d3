import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepRecord } from '../../src/metrics/csv.js';
import { formatSummary, summarize, writeSummaryJson } from '../../src/metrics/summary.js';
import { stepRecord } from './records.js';

/** Steps of 10 images: a slow first step, then 100, 400, 200, 300 ms split 10/70/20 between data, compute and comm. */
function fiveSteps(): StepRecord[] {
  const step = (n: number, stepMs: number, data: number, compute: number, comm: number, loss: number) =>
    stepRecord(n, { images: n * 10, stepMs, dataMs: data, computeMs: compute, commMs: comm, loss });
  return [
    step(1, 1000, 500, 400, 100, 7),
    step(2, 100, 10, 70, 20, 6),
    step(3, 400, 40, 280, 80, 5),
    step(4, 200, 20, 140, 40, 4),
    step(5, 300, 30, 210, 60, 3),
  ];
}

function assertClose(actual: unknown, expected: number, what: string): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);
}

describe('run summary', () => {
  it('counts every step but leaves the first (warm-up) out of rates, step times and shares', () => {
    const summary = summarize(fiveSteps());
    assert.equal(summary.steps, 5);
    assert.equal(summary.images, 50);
    assertClose(summary.seconds, 2, 'seconds');
    // 40 images in 100 + 400 + 200 + 300 ms; with the first step it would be 25.
    assertClose(summary.imagesPerSecond, 40, 'images per second');
    assertClose(summary.meanStepMs, 250, 'mean');
    assertClose(summary.medianStepMs, 250, 'median of an even count: between the middle two');
    assertClose(summary.p90StepMs, 370, 'p90: 0.7 of the way from 300 to 400');
    assertClose(summary.dataShare, 0.1, 'data share');
    assertClose(summary.computeShare, 0.7, 'compute share');
    assertClose(summary.commShare, 0.2, 'comm share');
  });

  it('takes the median of an odd count and interpolates p90 between ranks', () => {
    const summary = summarize(fiveSteps().slice(0, 4));
    assertClose(summary.medianStepMs, 200, 'median of 100, 200, 400');
    assertClose(summary.p90StepMs, 360, 'p90: 0.8 of the way from 200 to 400');
  });

  it('reports the first and last loss and the mean of the last 10', () => {
    const records = Array.from({ length: 12 }, (_, i) => stepRecord(i + 1, { loss: i + 1 }));
    const summary = summarize(records);
    assert.equal(summary.firstLoss, 1);
    assert.equal(summary.lastLoss, 12);
    assert.equal(summary.meanLossLast10, 7.5);
    assert.equal(summarize(records.slice(0, 3)).meanLossLast10, 2, 'fewer than 10 steps: all of them');
  });

  it('summarizes a single step with that step, warm-up and all', () => {
    const summary = summarize([stepRecord(1, { images: 16, stepMs: 500, dataMs: 50, computeMs: 400, commMs: 25, loss: 6.9 })]);
    assert.equal(summary.steps, 1);
    assert.equal(summary.images, 16);
    assertClose(summary.seconds, 0.5, 'seconds');
    assertClose(summary.imagesPerSecond, 32, 'images per second');
    assert.deepEqual([summary.meanStepMs, summary.medianStepMs, summary.p90StepMs], [500, 500, 500]);
    assert.deepEqual([summary.dataShare, summary.computeShare, summary.commShare], [0.1, 0.8, 0.05]);
    assert.deepEqual([summary.firstLoss, summary.lastLoss, summary.meanLossLast10], [6.9, 6.9, 6.9]);
  });

  it('summarizes no steps as zeros, and no loss as NaN', () => {
    const summary = summarize([]);
    assert.deepEqual([summary.steps, summary.images, summary.seconds, summary.imagesPerSecond, summary.p90StepMs, summary.dataShare], [0, 0, 0, 0, 0, 0]);
    assert.ok(Number.isNaN(summary.lastLoss));
  });

  it('counts the images of a resumed run\'s own steps, not those before its first', () => {
    const records = [101, 102, 103].map((step) => stepRecord(step, { images: step * 10, stepMs: 100 }));
    const summary = summarize(records);
    assert.equal(summary.images, 30);
    assertClose(summary.imagesPerSecond, 100, 'images per second');
  });

  it('adds the caller\'s figures', () => {
    const summary = summarize(fiveSteps(), { ranks: 4, strategy: 'ring', evalTop1: 0.5 });
    assert.equal(summary.ranks, 4);
    assert.equal(summary.strategy, 'ring');
    assert.equal(summary.steps, 5);
  });

  it('formats aligned lines, the caller\'s figures last', () => {
    const lines = formatSummary(summarize(fiveSteps(), { ranks: 4, csv: 'runs/1/steps.csv' }));
    assert.deepEqual(lines, [
      'trained     5 steps, 50 images in 2s',
      'throughput  40.0 img/s after the first step',
      'step time   250.0 ms mean, 250.0 median, 370.0 p90',
      'time in     data 10.0%, compute 70.0%, comm 20.0%',
      'loss        7.0000 first, 3.0000 last, 5.0000 mean of the last 10',
      'ranks       4',
      'csv         runs/1/steps.csv',
    ]);
  });

  describe('JSON', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'hpctrain-summary-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('is written whole, replacing an earlier one, with no temporary file left', () => {
      const path = join(dir, 'run', 'summary.json');
      writeSummaryJson(path, summarize(fiveSteps().slice(0, 2)));
      const summary = summarize(fiveSteps(), { ranks: 2 });
      writeSummaryJson(path, summary);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), summary);
      assert.deepEqual(readdirSync(join(dir, 'run')), ['summary.json']);
    });
  });
});
