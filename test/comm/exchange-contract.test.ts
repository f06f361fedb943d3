// One contract, both gradient exchanges (ring allreduce; parameter servers placed by size and
// round-robin), on real ZeroMQ sockets between ranks in this process: a common start, synchronous
// steps that match an independent reference computation, replicas equal bit for bit, optimizer
// state that resumes exactly, and a clean stop in which the servers leave first.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StepOutput } from '../../src/comm/types.js';
import type { RmsPropState } from '../../src/train/rmsprop.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { randomFloats, seededRandom } from '../helpers/random.js';
import { CONFIG, describeSetup, localAt, openRole, peersFor, type Role, type Setup, statsAt } from './exchange-harness.js';

const SETUPS: Setup[] = [
  { strategy: 'allreduce', workers: 1, servers: 0, placement: 'size' },
  { strategy: 'allreduce', workers: 3, servers: 0, placement: 'size' },
  { strategy: 'ps', workers: 1, servers: 1, placement: 'size' },
  { strategy: 'ps', workers: 2, servers: 1, placement: 'size' },
  { strategy: 'ps', workers: 3, servers: 2, placement: 'size' },
  { strategy: 'ps', workers: 2, servers: 3, placement: 'round-robin' },
];

function digest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

/** The specification, in float64 and written out plainly: mean, global norm, clip, RMSProp; moving averages averaged. */
class Reference {
  params: Float64Array;
  ms = new Float64Array(CONFIG.trainableLength);
  mom = new Float64Array(CONFIG.trainableLength);
  constructor(start: Float32Array) {
    this.params = Float64Array.from(start);
  }
  step(workers: number, step: number, learningRate: number): number {
    const mean = new Float64Array(CONFIG.totalLength);
    for (let w = 0; w < workers; w++) localAt(w, step).forEach((v, i) => { mean[i]! += v / workers; });
    let squares = 0;
    for (let i = 0; i < CONFIG.trainableLength; i++) squares += mean[i]! ** 2;
    const norm = Math.sqrt(squares);
    const scale = norm > CONFIG.clipNorm ? CONFIG.clipNorm / norm : 1;
    const { decay, momentum, epsilon } = CONFIG.rmsprop;
    for (let i = 0; i < CONFIG.trainableLength; i++) {
      const g = mean[i]! * scale;
      this.ms[i] = decay * this.ms[i]! + (1 - decay) * g * g;
      this.mom[i] = momentum * this.mom[i]! + (learningRate * g) / Math.sqrt(this.ms[i]! + epsilon);
      this.params[i]! -= this.mom[i]!;
    }
    for (let i = CONFIG.trainableLength; i < CONFIG.totalLength; i++) this.params[i] = mean[i]!;
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
  const params = workers.map((_, w) => randomFloats(seededRandom(50 + w), CONFIG.totalLength));
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
        const reference = new Reference(first);
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
        assert.ok(norms.some((n) => n > CONFIG.clipNorm) && norms.some((n) => n < CONFIG.clipNorm), 'the steps should clip at some steps and not at others');
        await finishJob(job);
        // The servers have gone: after longer than the transport's grace period for a lost
        // connection, the workers still meet in a barrier, and none takes the servers' exit for a death.
        await sleep(setup.servers > 0 ? 4000 : 0);
        await Promise.all(job.workers.map((w) => w.group.barrier()));
        const results = await Promise.all(job.servers.map((s) => s.result));
        for (const result of results) assert.equal(result.steps, 6);
        assert.equal(results.reduce((sum, r) => sum + r.shardLength, 0), setup.servers > 0 ? CONFIG.totalLength : 0, 'the shards do not cover the variables once');
      } finally {
        await closeJob(job);
      }
    });

    it('resumes from the parameters and optimizer state captured at a step exactly where an uninterrupted run goes', async () => {
      const whole = await openJob(setup);
      let captured: { params: Float32Array; state: RmsPropState } | undefined;
      let uninterrupted: Float32Array;
      try {
        await Promise.all(whole.workers.map((worker, w) => worker.exchange.start(whole.params[w]!)));
        const outputs = await runSteps(whole, 0, 3, 2);
        const state = outputs[2]![0]!.optimizerState;
        assert.ok(state, 'the first worker got no optimizer state');
        assert.equal(state.ms.length, CONFIG.trainableLength);
        assert.ok(state.ms.some((v) => v !== 0) && state.mom.some((v) => v !== 0), 'the captured state is empty');
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
        for (const params of resumed.params) assert.equal(digest(params), digest(uninterrupted), 'the resumed run went elsewhere');
        await finishJob(resumed);
      } finally {
        await closeJob(resumed);
      }
    });
  });
}
