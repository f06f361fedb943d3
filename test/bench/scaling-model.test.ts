// The scaling study's pure parts: the job plan and its checks on bad input, the statistics of the
// timed steps, and the alpha-beta fit, which must recover the latency and bandwidth that made a
// set of timings.
import assert from 'node:assert/strict';
import { standardError, stepFigures } from '../../bench/scaling/collect.js';
import { fitRing, fitServers, predictStep, ringMs, serversMs, type ExchangeTiming } from '../../bench/scaling/model.js';
import { parseStrategies, planStudy, type StudySettings } from '../../bench/scaling/plan.js';
import type { StepRecord } from '../../src/metrics/csv.js';

const SETTINGS: StudySettings = {
  nodes: [1, 2, 4], strategies: parseStrategies('allreduce,ps'), repeats: 2, ranksPerNode: 1, scaling: 'weak', batch: 8, imageSize: 75,
  warmupSteps: 1, timedSteps: 3, data: 'synthetic', env: {},
};

describe('the scaling study\'s plan', () => {
  it('has a job per node count, strategy and repeat, the repeats round the list, and leaves out ps where no rank would be left to work, saying why', () => {
    const { jobs, skipped } = planStudy(SETTINGS);
    // The repeats go round the whole list.
    assert.deepEqual(jobs.map((j) => j.key), ['n1-allreduce-r1', 'n2-allreduce-r1', 'n2-ps1-r1', 'n4-allreduce-r1', 'n4-ps1-r1',
      'n1-allreduce-r2', 'n2-allreduce-r2', 'n2-ps1-r2', 'n4-allreduce-r2', 'n4-ps1-r2']);
    assert.deepEqual(jobs.filter((j) => j.key.startsWith('n4-ps1')).map((j) => [j.workers, j.servers, j.globalBatch]), [[3, 1, 24], [3, 1, 24]]);
    assert.deepEqual(skipped.map((s) => [s.nodes, s.strategy]), [[1, 'ps:1']]);
    assert.match(skipped[0]!.reason, /leave no worker/);
  });

  it('splits a fixed global batch over the workers with --strong, and refuses one they cannot share, naming a batch that works', () => {
    const strong = planStudy({ ...SETTINGS, strategies: parseStrategies('allreduce'), repeats: 1, scaling: 'strong', batch: 16 });
    assert.deepEqual(strong.jobs.map((j) => [j.nodes, j.batchSize, j.globalBatch]), [[1, 16, 16], [2, 8, 16], [4, 4, 16]]);
    assert.throws(() => planStudy({ ...SETTINGS, scaling: 'strong', batch: 16 }), /the global batch 16 does not split evenly over 3 worker\(s\) \(4 node\(s\), ps:1\).*\(e\.g\. 12\)/);
  });

  it('takes allreduce, ps and ps:K, and answers anything else with what to write', () => {
    assert.deepEqual(parseStrategies('allreduce,ps:2,ps,ps:1').map((s) => [s.name, s.servers, s.label]), [['allreduce', 0, 'allreduce'], ['ps', 2, 'ps:2'], ['ps', 1, 'ps:1']]);
    assert.throws(() => parseStrategies('allreduce,horovod'), /"horovod" is not a strategy; use allreduce, ps .* or ps:K/);
    assert.throws(() => parseStrategies('ps:0'), /no parameter server/);
    assert.throws(() => planStudy({ ...SETTINGS, nodes: [1], strategies: parseStrategies('ps:2') }), /no job can run: ps:2 needs more than 2 rank/);
  });
});

describe('the scaling study\'s figures', () => {
  const record = (step: number, stepMs: number, parts: [number, number, number]): StepRecord => ({
    step, epoch: 0, images: 0, loss: 1, top1: 0, learningRate: 0, gradNorm: 0, dataMs: parts[0], computeMs: parts[1], commMs: parts[2], stepMs,
    imagesPerSecond: 0, slowestRank: 0, slowestStepMs: stepMs,
  });

  it('takes images/s per step from the global batch and each step\'s time, with the standard error of their mean and the parts of the time', () => {
    const figures = stepFigures([record(2, 1000, [100, 600, 300]), record(3, 500, [50, 300, 150]), record(4, 2000, [200, 1200, 600])], 8);
    // 8, 16 and 4 images/s: their mean, and the sample standard deviation over sqrt(3).
    assert.ok(Math.abs(figures.imagesPerSecond! - 28 / 3) < 1e-9);
    const sd = Math.sqrt(((8 - 28 / 3) ** 2 + (16 - 28 / 3) ** 2 + (4 - 28 / 3) ** 2) / 2);
    assert.ok(Math.abs(figures.imagesPerSecondSe! - sd / Math.sqrt(3)) < 1e-9);
    assert.equal(figures.stepMsMedian, 1000);
    assert.equal(figures.stepMsP90, 2000);
    assert.deepEqual([figures.dataShare, figures.computeShare, figures.commShare].map((s) => Number(s!.toFixed(6))), [0.1, 0.6, 0.3]);
    assert.equal(standardError([5]), 0);
  });
});

describe('the alpha-beta model of the exchange', () => {
  const sizes = [2 ** 20, 16 * 2 ** 20, 95_334_272];

  it('recovers the latency and bandwidth that made a ring\'s timings, with 5% noise', () => {
    const alpha = 0.05;
    const beta = 1 / 1.2e6; // 1.2 GB/s, in ms per byte
    const noise = [1.05, 0.95, 1.02, 0.98, 1.04, 0.97, 1.01, 0.99, 1.03];
    const timings: ExchangeTiming[] = [2, 4, 8].flatMap((n, i) => sizes.map((bytes, j) => ({ n, bytes, ms: (2 * (n - 1) * alpha + (2 * (n - 1) / n) * bytes * beta) * noise[i * 3 + j]! })));
    const fit = fitRing(timings);
    assert.ok(Math.abs(fit.betaMsPerByte / beta - 1) < 0.05, `beta ${fit.betaMsPerByte} against ${beta}`);
    assert.ok(Math.abs(fit.alphaMs / alpha - 1) < 0.25, `alpha ${fit.alphaMs} against ${alpha}`);
    assert.ok(fit.rmsRelativeError < 0.06);
    // Extrapolated to 128 ranks it stays within the noise.
    const truth = 2 * 127 * alpha + (2 * 127 / 128) * sizes[2]! * beta;
    assert.ok(Math.abs(ringMs(fit, 128, sizes[2]!) / truth - 1) < 0.07);
  });

  it('fits the servers\' fan-in (time grows with the workers) and predicts a step from a node\'s own and the exchange', () => {
    const timings: ExchangeTiming[] = [1, 2, 4].flatMap((n) => sizes.map((bytes) => ({ n, bytes, ms: 2 + n * bytes * 1e-6 })));
    const fit = fitServers(timings);
    assert.ok(Math.abs(fit.alphaMs - 2) < 1e-6 && Math.abs(fit.betaMsPerByte - 1e-6) < 1e-12);
    assert.ok(Math.abs(serversMs(fit, 8, 2, 4e6) - (2 + 8 * 2e6 * 1e-6)) < 1e-6);
    const ring = fitRing([2, 4].flatMap((n) => sizes.map((bytes) => ({ n, bytes, ms: 2 * (n - 1) * 0.1 + (2 * (n - 1) / n) * bytes * 1e-6 }))));
    const node = { batchSize: 8, computeMs: 400, updateMs: 100 };
    const weak = predictStep({ nodes: 4, ranksPerNode: 1, servers: 0, scaling: 'weak', batchSize: 8, globalBatch: 8, gradientBytes: 1e6, node, ring });
    assert.equal(weak.workers, 4);
    assert.ok(Math.abs(weak.stepMs - (400 + 100 + 6 * 0.1 + 1.5e6 * 1e-6)) < 1e-6);
    assert.ok(Math.abs(weak.imagesPerSecond - (32 * 1000) / weak.stepMs) < 1e-9);
    // Strong scaling: the global batch of 8 over 4 workers, each computing a quarter of it.
    const strong = predictStep({ nodes: 4, ranksPerNode: 1, servers: 0, scaling: 'strong', batchSize: 8, globalBatch: 8, gradientBytes: 1e6, node, ring });
    assert.equal(strong.batchSize, 2);
    assert.ok(Math.abs(strong.stepMs - (100 + 100 + 6 * 0.1 + 1.5e6 * 1e-6)) < 1e-6);
    const ps = predictStep({ nodes: 5, ranksPerNode: 1, servers: 1, scaling: 'weak', batchSize: 8, globalBatch: 8, gradientBytes: 1e6, node, ring, ps: fit });
    assert.equal(ps.workers, 4);
    assert.ok(Math.abs(ps.commMs - (2 + 4 * 1e6 * 1e-6)) < 1e-6);
  });
});
