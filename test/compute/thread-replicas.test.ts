// Compute threads as real worker threads, each with its own wasm instance and replica of
// Inception-V3: N threads with slices of a batch compute what one thread computes with all of it
// (batch norm over the whole batch, gradients added in shared memory), step after step from the
// same weights; their evaluation counts are the same; their replicas hold the weights they were
// given, bit for bit; and a thread that dies mid-step fails the rank's step instead of hanging it.
import assert from 'node:assert/strict';
import { selectBackend } from '../../src/backend/select.js';
import { InProcessReplicas } from '../../src/compute/model-replica.js';
import { splitBatch, ThreadReplicas } from '../../src/compute/thread-replicas.js';
import type { ComputeReplicas } from '../../src/compute/types.js';
import { parametersDigest } from '../../src/compute/weights.js';
import type { Batch } from '../../src/data/types.js';
import { ComputeError } from '../../src/errors.js';
import { newOptimizerState } from '../../src/optim/types.js';
import { localUpdater } from '../../src/optim/updater.js';
import { buildInceptionV3 } from '../../src/model/inception-v3.js';

const SIZE = 75;
const CLASSES = 4;
const MODEL = { imageSize: SIZE, numClasses: CLASSES, auxLogits: true, seed: 11 };
const LOSS = { numClasses: CLASSES, labelSmoothing: 0.1, auxLossWeight: 0.4 };

/** Images with structure per class (a stripe frequency and a colour), not noise. */
function batchOf(size: number, step: number): Batch {
  const images = new Float32Array(size * SIZE * SIZE * 3);
  const labels = Int32Array.from({ length: size }, (_, i) => (i + step) % CLASSES);
  for (let n = 0; n < size; n++) {
    const label = labels[n]!;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const stripe = Math.sin(((label + 1) * (x + 2 * y + 3 * n + step)) / 7);
        for (let c = 0; c < 3; c++) images[((n * SIZE + y) * SIZE + x) * 3 + c] = c === label % 3 ? stripe : 0.5 * stripe - 0.2;
      }
    }
  }
  return { images, labels, batchSize: size, imageSize: SIZE };
}

function maxAbs(values: Float32Array, start: number, end: number): number {
  let max = 0;
  for (let i = start; i < end; i++) max = Math.max(max, Math.abs(values[i]!));
  return max;
}

function distance(a: Float32Array, b: Float32Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(sum);
}

function maxDifference(a: Float32Array, b: Float32Array, start: number, end: number): number {
  let max = 0;
  for (let i = start; i < end; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('compute threads (real worker threads, Inception-V3)', function () {
  this.timeout(300_000);
  let reference: InProcessReplicas;
  /** The seeded weights, before any step moved the reference's batch norm averages. */
  let seeded: Float32Array;
  before(async () => {
    await selectBackend('wasm', 0);
    reference = new InProcessReplicas(buildInceptionV3(MODEL), LOSS);
    seeded = new Float32Array(reference.layout.totalLength);
    reference.initialParameters(seeded);
  });
  after(() => reference.close());

  it('splits a batch as evenly as it can, the first threads taking one more', () => {
    assert.deepEqual(splitBatch(6, 4), { offsets: [0, 2, 4, 5], sizes: [2, 2, 1, 1] });
    assert.deepEqual(splitBatch(8, 2), { offsets: [0, 4], sizes: [4, 4] });
  });

  for (const threads of [2, 4]) {
    it(`${threads} threads with slices of a batch of 6 compute what one thread computes with all 6, step after step: loss, gradients, moving averages`, async () => {
      const replicas = await ThreadReplicas.start({ threads, modelArgs: MODEL, loss: LOSS, maxBatch: 6 });
      try {
        const layout = reference.layout;
        const params = seeded.slice();
        const initial = new Float32Array(layout.totalLength);
        replicas.initialParameters(initial);
        assert.equal(parametersDigest(initial), parametersDigest(seeded), 'the threads start from the seeded weights');
        for (let step = 0; step < 3; step++) {
          reference.setParameters(params);
          replicas.setParameters(params);
          const batch = batchOf(6, step);
          const one = await reference.gradients(batch, step);
          const expected = one.local.slice();
          const many = await replicas.gradients(batch, step);
          assert.ok(Math.abs(many.loss - one.loss) <= 1e-6 * Math.abs(one.loss), `step ${step}: loss ${many.loss} against ${one.loss}`);
          assert.ok(Math.abs(many.top1 - one.top1) <= 1e-6, `step ${step}: top-1 ${many.top1} against ${one.top1}`);
          // Float32 sums over the batch in another order: the gradient vectors agree to 1e-5 of their norm.
          const gradientError = distance(many.local, expected, 0, layout.trainableLength) / distance(expected, new Float32Array(expected.length), 0, layout.trainableLength);
          assert.ok(gradientError <= 1e-5, `step ${step}: the gradients differ by ${gradientError} of their norm`);
          const largest = maxAbs(expected, 0, layout.trainableLength);
          const worst = maxDifference(many.local, expected, 0, layout.trainableLength);
          assert.ok(worst <= 1e-4 * largest, `step ${step}: a gradient differs by ${worst} (the largest is ${largest})`);
          // Batch norm's statistics were the whole batch's on every thread, not each slice's.
          const statisticsError = maxDifference(many.local, expected, layout.trainableLength, layout.totalLength);
          assert.ok(statisticsError <= 1e-5 * maxAbs(expected, layout.trainableLength, layout.totalLength), `step ${step}: moving averages differ by ${statisticsError}`);
          // The next weights from the one thread's gradients, as an exchange would make them.
          for (let i = 0; i < layout.trainableLength; i++) params[i] = params[i]! - 1e-7 * expected[i]!;
          params.set(expected.subarray(layout.trainableLength), layout.trainableLength);
        }
        replicas.setParameters(params);
        assert.deepEqual(await replicas.digests(), Array(threads).fill(parametersDigest(params)), 'every replica holds the weights it was given');
        await assertSameEvaluation(reference, replicas, params);
      } finally {
        await replicas.close();
      }
    });
  }

  it('3 threads update pieces of shared vectors to the bits one thread gets for the whole: adamw with decayed runs, rmsprop, momentum', async () => {
    const replicas = await ThreadReplicas.start({ threads: 3, modelArgs: MODEL, loss: LOSS, maxBatch: 3 });
    try {
      const length = 100_003;
      const decayRuns = [{ start: 5, length: 40_000 }, { start: 60_000, length: 33_337 }];
      for (const optimizer of [
        { name: 'adamw', rho: 0.9, momentum: 0.9, nesterov: false, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 },
        { name: 'rmsprop', rho: 0.9, momentum: 0.9, nesterov: false, beta1: 0.9, beta2: 0.999, epsilon: 1.0, weightDecay: 4e-5 },
        { name: 'momentum', rho: 0.9, momentum: 0.9, nesterov: true, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 4e-5 },
      ] as const) {
        const jobs = [replicas, localUpdater].map((updater) => {
          const params = updater.allocate(length);
          const gradients = updater.allocate(length);
          const state = newOptimizerState(optimizer.name, length, updater.allocate);
          for (let i = 0; i < length; i++) {
            params[i] = Math.sin(i);
            gradients[i] = Math.cos(i * 1.3) * 1e-2;
          }
          for (const slot of Object.values(state)) slot.fill(1e-4);
          return { updater, job: { optimizer, params, gradients, state, decayRuns, args: { learningRate: 0.01, step: 3, scale: 0.5 } } };
        });
        assert.ok(jobs[0]!.job.params.buffer instanceof SharedArrayBuffer, 'the threads allocate shared memory');
        for (const { updater, job } of jobs) await updater.update(job);
        const [threaded, local] = jobs.map(({ job }) => job);
        assert.equal(parametersDigest(threaded!.params), parametersDigest(local!.params), `${optimizer.name}: the values differ`);
        for (const slot of Object.keys(local!.state)) assert.deepEqual(threaded!.state[slot], local!.state[slot], `${optimizer.name}: slot ${slot} differs`);
        assert.notEqual(parametersDigest(local!.params), parametersDigest(Float32Array.from({ length }, (_, i) => Math.sin(i))), 'the update changed nothing');
      }
    } finally {
      await replicas.close();
    }
  });

  it('a thread that dies mid-step fails the step with an error naming it, and releases the others', async () => {
    const replicas = await ThreadReplicas.start({ threads: 2, modelArgs: MODEL, loss: LOSS, maxBatch: 4 });
    try {
      const params = new Float32Array(replicas.layout.totalLength);
      replicas.initialParameters(params);
      replicas.setParameters(params);
      const step = replicas.gradients(batchOf(4, 0), 0);
      // Thread 1 is gone before it reaches the first batch norm layer's sums; thread 0 waits there.
      await (replicas as unknown as { workers: { terminate(): Promise<number> }[] }).workers[1]!.terminate();
      await assert.rejects(step, (error: unknown) => error instanceof ComputeError && /compute thread 1 exited/.test(error.message));
      await assert.rejects(replicas.gradients(batchOf(4, 1), 1), ComputeError, 'a failed set of threads takes no more steps');
    } finally {
      await replicas.close();
    }
  });
});

async function assertSameEvaluation(one: ComputeReplicas, many: ComputeReplicas, params: Float32Array): Promise<void> {
  one.setParameters(params);
  // 5 images over the threads: some take fewer, or none.
  const batch = batchOf(5, 7);
  const [a, b] = [await one.evaluate(batch), await many.evaluate(batch)];
  assert.deepEqual({ ...b, lossSum: 0 }, { ...a, lossSum: 0 });
  assert.ok(Math.abs(a.lossSum - b.lossSum) <= 1e-5 * a.lossSum, `loss sums ${b.lossSum} against ${a.lossSum}`);
}
