// One contract, both gradient exchanges (ring allreduce; parameter servers placed by size and
// round-robin), on real ZeroMQ sockets between ranks in this process: a common start, synchronous
// steps that match an independent reference computation, replicas equal bit for bit, optimizer
// state that resumes exactly, and a clean stop in which the servers leave first.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExchangeConfig, StepOutput } from '../../src/comm/types.js';
import { NumericalError } from '../../src/errors.js';
import { OPTIMIZERS, type OptimizerState } from '../../src/optim/types.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { randomFloats, seededRandom } from '../helpers/random.js';
import { configFor, describeSetup, localAt, openRole, peersFor, type Role, type Setup, statsAt, TOTAL_LENGTH, TRAINABLE_LENGTH } from './exchange-harness.js';

const LAYOUTS: Omit<Setup, 'optimizer'>[] = [
  { strategy: 'allreduce', workers: 1, servers: 0, placement: 'size' },
  { strategy: 'allreduce', workers: 3, servers: 0, placement: 'size' },
  { strategy: 'ps', workers: 1, servers: 1, placement: 'size' },
  { strategy: 'ps', workers: 2, servers: 1, placement: 'size' },
  { strategy: 'ps', workers: 3, servers: 2, placement: 'size' },
  { strategy: 'ps', workers: 2, servers: 3, placement: 'round-robin' },
];
const SETUPS: Setup[] = OPTIMIZERS.flatMap((optimizer) => LAYOUTS.map((layout) => ({ ...layout, optimizer })));

function digest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

/**
 * The specification, in float64 and written out plainly from the papers' and TensorFlow's
 * formulas: mean, L2 on the decayed variables (or adamw's decoupled decay), global norm, clip, the
 * optimizer; moving averages averaged.
 */
class Reference {
  params: Float64Array;
  private readonly slots = [new Float64Array(TRAINABLE_LENGTH), new Float64Array(TRAINABLE_LENGTH)];
  private readonly decayed: boolean[];
  constructor(start: Float32Array, private readonly config: ExchangeConfig) {
    this.params = Float64Array.from(start);
    this.decayed = config.variableLengths.flatMap((length, i) => Array<boolean>(length).fill(config.decayed[i]!)).slice(0, TRAINABLE_LENGTH);
  }
  step(workers: number, step: number, learningRate: number): number {
    const { name, rho, momentum, nesterov, beta1, beta2, epsilon, weightDecay } = this.config.optimizer;
    const mean = new Float64Array(TOTAL_LENGTH);
    for (let w = 0; w < workers; w++) localAt(w, step).forEach((v, i) => { mean[i]! += v / workers; });
    const g = Array.from({ length: TRAINABLE_LENGTH }, (_, i) => mean[i]! + (this.decayed[i] && name !== 'adamw' ? weightDecay * this.params[i]! : 0));
    const norm = Math.sqrt(g.reduce((sum, v) => sum + v * v, 0));
    const scale = norm > this.config.clipNorm ? this.config.clipNorm / norm : 1;
    const [a, b] = this.slots as [Float64Array, Float64Array];
    for (let i = 0; i < TRAINABLE_LENGTH; i++) {
      const gi = g[i]! * scale;
      if (name === 'adamw' && this.decayed[i]) this.params[i]! *= 1 - learningRate * weightDecay;
      if (name === 'rmsprop') {
        a[i] = rho * a[i]! + (1 - rho) * gi * gi;
        b[i] = momentum * b[i]! + (learningRate * gi) / Math.sqrt(a[i]! + epsilon);
        this.params[i]! -= b[i]!;
      } else if (name === 'momentum') {
        a[i] = momentum * a[i]! + gi;
        this.params[i]! -= learningRate * (nesterov ? gi + momentum * a[i]! : a[i]!);
      } else {
        a[i] = beta1 * a[i]! + (1 - beta1) * gi;
        b[i] = beta2 * b[i]! + (1 - beta2) * gi * gi;
        const mHat = a[i]! / (1 - beta1 ** (step + 1));
        const vHat = b[i]! / (1 - beta2 ** (step + 1));
        this.params[i]! -= (learningRate * mHat) / (Math.sqrt(vHat) + epsilon);
      }
    }
    for (let i = TRAINABLE_LENGTH; i < TOTAL_LENGTH; i++) this.params[i] = mean[i]!;
    return norm;
  }
}

const rateAt = (step: number) => 0.01 * (1 + step);

interface Job {
  workers: Extract<Role, { kind: 'worker' }>[];
  servers: Extract<Role, { kind: 'server' }>[];
  params: Float32Array[];
}

async function openJob(setup: Setup): Promise<Job> {
  const peers = peersFor(setup, await getFreePortBlock(setup.workers + setup.servers));
  const roles = await Promise.all(peers.map((p) => openRole(setup, peers, p.rank)));
  const workers = roles.filter((r) => r.kind === 'worker');
  // Each worker starts elsewhere: start() must make them all the first worker's.
  const params = workers.map((_, w) => randomFloats(seededRandom(50 + w), TOTAL_LENGTH));
  return { workers, servers: roles.filter((r) => r.kind === 'server'), params };
}

async function runSteps(job: Job, from: number, to: number, captureAt?: number): Promise<StepOutput[][]> {
  const outputs: StepOutput[][] = [];
  for (let step = from; step < to; step++) {
    outputs.push(await Promise.all(job.workers.map((worker, w) => worker.exchange.step(job.params[w]!, {
      step, learningRate: rateAt(step), local: localAt(w, step), stats: statsAt(w, step), captureState: step === captureAt,
    }))));
  }
  return outputs;
}

async function finishJob(job: Job): Promise<void> {
  await Promise.all(job.workers.map((w) => w.exchange.finish()));
  await Promise.all(job.servers.map(async (s) => {
    await s.result;
    await s.transport.close();
  }));
}

async function closeJob(job: Job): Promise<void> {
  await Promise.all([...job.workers, ...job.servers].map((r) => r.transport.close()));
}

for (const setup of SETUPS) {
  describe(`gradient exchange contract, ${describeSetup(setup)}`, function () {
    this.timeout(60_000);

    it('starts every worker from the first worker\'s parameters, then steps as the reference does, every replica bit for bit alike', async () => {
      const job = await openJob(setup);
      try {
        const first = job.params[0]!.slice();
        await Promise.all(job.workers.map((worker, w) => worker.exchange.start(job.params[w]!)));
        for (const params of job.params) assert.equal(digest(params), digest(first), 'a worker did not start from the first worker\'s values');
        const config = configFor(setup.optimizer);
        const reference = new Reference(first, config);
        const outputs = await runSteps(job, 0, 6);
        const norms = outputs.map((_, step) => reference.step(setup.workers, step, rateAt(step)));
        assert.equal(new Set(job.params.map(digest)).size, 1, 'replicas differ');
        const worst = job.params[0]!.reduce((max, v, i) => Math.max(max, Math.abs(v - reference.params[i]!) / Math.max(1, Math.abs(reference.params[i]!))), 0);
        assert.ok(worst < 1e-5, `parameters differ from the reference by ${worst}`);
        assert.ok(Math.abs(job.params[0]![0]! - first[0]!) > 1e-4, 'the steps did not move the parameters');
        for (const [step, perWorker] of outputs.entries()) {
          for (const output of perWorker) {
            assert.ok(Math.abs(output.gradNorm - norms[step]!) < 1e-5 * norms[step]!, `step ${step}: norm ${output.gradNorm}, reference ${norms[step]}`);
            const expected = [(setup.workers - 1) / 2, step, 10 / setup.workers];
            expected.forEach((v, i) => assert.ok(Math.abs(output.stats[i]! - v) < 1e-5, `step ${step}: stats ${[...output.stats]} against ${expected}`));
          }
        }
        assert.ok(norms.some((n) => n > config.clipNorm) && norms.some((n) => n < config.clipNorm), 'the steps should clip at some steps and not at others');
        await finishJob(job);
        // The servers have gone: after longer than the transport's grace period for a lost
        // connection, the workers still meet in a barrier, and none takes the servers' exit for a death.
        // (Once per layout: the optimizer has no part in it.)
        await sleep(setup.servers > 0 && setup.optimizer === 'rmsprop' ? 4000 : 0);
        await Promise.all(job.workers.map((w) => w.group.barrier()));
        const results = await Promise.all(job.servers.map((s) => s.result));
        for (const result of results) assert.equal(result.steps, 6);
        assert.equal(results.reduce((sum, r) => sum + r.shardLength, 0), setup.servers > 0 ? TOTAL_LENGTH : 0, 'the shards do not cover the variables once');
      } finally {
        await closeJob(job);
      }
    });

    it('applies no step whose averaged loss or gradient norm is not finite: every worker and server stops with the same error, the parameters as they were', async () => {
      const job = await openJob(setup);
      try {
        await Promise.all(job.workers.map((worker, w) => worker.exchange.start(job.params[w]!)));
        await runSteps(job, 0, 2);
        const before = job.params.map((p) => p.slice());
        const last = setup.workers - 1;
        // One worker's gradient holds a NaN at step 2 (a blown-up loss on one rank); another time, only its loss is infinite.
        const poisoned = setup.optimizer === 'adam' ? 'loss' : 'gradient';
        const results = await Promise.allSettled(job.workers.map((worker, w) => {
          const local = localAt(w, 2);
          const stats = statsAt(w, 2);
          if (w === last && poisoned === 'gradient') local[5] = Number.NaN;
          if (w === last && poisoned === 'loss') stats[0] = Number.POSITIVE_INFINITY;
          return worker.exchange.step(job.params[w]!, { step: 2, learningRate: rateAt(2), local, stats });
        }));
        for (const result of results) {
          assert.equal(result.status, 'rejected');
          const error = (result as PromiseRejectedResult).reason as Error;
          assert.ok(error instanceof NumericalError, String(error));
          assert.match(error.message, poisoned === 'loss' ? /^step 3: the loss averaged over the workers is Infinity$/ : /^step 3: the global norm of the averaged gradients is NaN$/);
        }
        job.params.forEach((params, w) => assert.equal(digest(params), digest(before[w]!), `worker ${w} applied the step`));
        // The servers wait to be stopped (so that the workers can save first), then fail too.
        await Promise.all(job.workers.map((worker) => worker.exchange.finish()));
        for (const server of job.servers) await assert.rejects(server.result, (error: unknown) => error instanceof NumericalError && /^step 3: /.test(error.message));
      } finally {
        await closeJob(job);
      }
    });

    it('resumes from the parameters and optimizer state captured at a step exactly where an uninterrupted run goes', async () => {
      const whole = await openJob(setup);
      let captured: { params: Float32Array; state: OptimizerState } | undefined;
      let uninterrupted: Float32Array;
      try {
        await Promise.all(whole.workers.map((worker, w) => worker.exchange.start(whole.params[w]!)));
        const outputs = await runSteps(whole, 0, 3, 2);
        const state = outputs[2]![0]!.optimizerState;
        assert.ok(state, 'the first worker got no optimizer state');
        assert.ok(Object.keys(state).length > 0);
        for (const [slot, values] of Object.entries(state)) {
          assert.equal(values.length, TRAINABLE_LENGTH, slot);
          assert.ok(values.some((v) => v !== 0), `the captured slot ${slot} is empty`);
        }
        captured = { params: whole.params[0]!.slice(), state };
        await runSteps(whole, 3, 6);
        uninterrupted = whole.params[0]!.slice();
        await finishJob(whole);
      } finally {
        await closeJob(whole);
      }
      const resumed = await openJob(setup);
      try {
        // Only the first worker has the checkpoint; the others start from anything.
        resumed.params[0] = captured.params.slice();
        await Promise.all(resumed.workers.map((worker, w) => worker.exchange.start(resumed.params[w]!, w === 0 ? captured!.state : undefined)));
        await runSteps(resumed, 3, 6);
        for (const params of resumed.params) assert.equal(digest(params), digest(uninterrupted!), 'the resumed run went elsewhere');
        await finishJob(resumed);
      } finally {
        await closeJob(resumed);
      }
    });
  });
}
