// A worker's run: the common start (a checkpoint's state on a resume), the synchronous steps
// (local gradients -> exchange -> the same parameters everywhere -> moving average), evaluations
// on the validation split every so many steps and at the end (of the trained weights, and of their
// moving average when there is one; sharded over the workers, counts added exactly), and the end
// (servers stopped). The first worker also keeps the run's records: a CSV row and a progress line
// per step, a row per evaluation, checkpoints, the summary. A run can also stop early, every
// worker after the same step, with a checkpoint (lifecycle.ts: a signal, or the job's end near).
import { performance } from 'node:perf_hooks';
import type { Collectives } from '../comm/collectives.js';
import type { GradientExchange } from '../comm/types.js';
import type { InputPipeline } from '../data/types.js';
import type { EvalRecord } from '../metrics/csv.js';
import type { ComputeReplicas } from '../compute/types.js';
import { parametersDigest } from '../compute/weights.js';
import { ComputeError, NumericalError } from '../errors.js';
import { firstNonFinite } from '../optim/guard.js';
import { emaDecayAt, updateEma } from './ema.js';
import { evaluate } from './eval.js';
import { RunRecords } from './run-records.js';
import type { RunLifecycle } from './lifecycle.js';
import { learningRateAt, type Schedule } from './schedule.js';

export interface WorkerRunOptions {
  /** The rank's model: on this thread, or one replica per compute thread. */
  replicas: ComputeReplicas;
  input: InputPipeline;
  /** The validation split, opened at the start (so that a missing one is found before training), or undefined: no evaluation. */
  evalInput: InputPipeline | undefined;
  /** Batches each worker evaluates; 0: its whole shard. */
  evalBatches: number;
  /** Evaluate after every this many steps, and at the end; 0: at the end only. */
  evalEverySteps: number;
  exchange: GradientExchange;
  /** The workers (not the servers), for the start and the evaluation. */
  group: Collectives;
  maxSteps: number;
  schedule: Schedule;
  /** 0: no moving average. */
  emaDecay: number;
  /** The first worker's record keeping; undefined on the others. */
  records: RunRecords | undefined;
  globalBatch: number;
  /** Each worker's rank in the job, to name the slowest. */
  workerRanks: readonly number[];
  /** Whether this worker wants the run to stop early (a signal, the job's end). */
  lifecycle: RunLifecycle;
  stdout(text: string): void;
  log(line: string): void;
}

export interface WorkerRunResult {
  steps: number;
  /** sha256 of the final parameters: the same on every worker. */
  digest: string;
  /** The last evaluation, of each set of weights (empty without a validation split). */
  evaluations: EvalRecord[];
  /** The step this run started from (a checkpoint's, or 0). */
  startStep: number;
  /** Set when the run stopped before its last step, checkpointed, on every worker after the same step. */
  stopped?: { step: number; reason: string };
}

/** The figures every worker adds to the step's exchange: loss, top-1, each worker's time to reach it, the workers that want to stop. */
export const statsLength = (workers: number): number => 3 + workers;

export async function runWorker(options: WorkerRunOptions): Promise<WorkerRunResult> {
  try {
    return await run(options);
  } catch (error) {
    // A step that went wrong (or a lost peer) ends the run; the checkpoint being written is the last good one.
    await options.records?.abandon();
    // Every worker (and server) meets a numerical error at the same step: they leave together,
    // servers last, once the first worker's checkpoint is on disk (a launcher stops every rank
    // when the first exits).
    if (error instanceof NumericalError && error.everyWorker) {
      await options.group.barrier().catch(() => {});
      await options.exchange.finish().catch(() => {});
    }
    throw error;
  }
}

async function run(options: WorkerRunOptions): Promise<WorkerRunResult> {
  const { replicas, input, exchange, group, records, maxSteps } = options;
  const layout = replicas.layout;
  // Where the replicas can reach it: with compute threads they share its update.
  const params = replicas.allocate(layout.totalLength);
  replicas.initialParameters(params);
  const resumed = records ? await records.resume(layout) : undefined;
  if (resumed) params.set(resumed.weights);
  // Every worker learns where the first one starts: a step count is exact in float32 below 2^24.
  const start = Float32Array.of(resumed?.step ?? 0);
  await group.broadcast(start, 0);
  const startStep = start[0]!;
  await exchange.start(params, resumed?.state);
  const ema = options.emaDecay > 0 ? (resumed?.ema ?? params.slice()) : undefined;
  if (ema && startStep > 0) await group.broadcast(ema, 0);
  replicas.setParameters(params);
  records?.begin(startStep);

  const workers = exchange.workers;
  // Each step's figures, averaged over the workers: loss, top-1, then each worker's time to reach
  // the exchange in its own slot, then 1 from each worker that wants the run to stop.
  const stats = new Float32Array(statsLength(workers));
  const voteSlot = 2 + workers;
  const { stepsPerEpoch } = options.schedule;
  const lifecycle = options.lifecycle;
  let evaluations: EvalRecord[] = [];
  let step = startStep;
  // Once any worker wants to stop: every worker stops after this many steps, with a checkpoint.
  let stopAfter: number | undefined;
  let stopReason = '';
  let boundary = performance.now();
  while (step < maxSteps && step !== stopAfter) {
    const epoch = Math.floor(step / stepsPerEpoch);
    const batches = input.epoch(epoch, step % stepsPerEpoch);
    for (;;) {
      const waitStart = performance.now();
      const next = await batches.next();
      if (next.done) break;
      const computeStart = performance.now();
      const learningRate = learningRateAt(step, options.schedule);
      const result = await replicas.gradients(next.value, step);
      const commStart = performance.now();
      stats.fill(0);
      stats[0] = result.loss;
      stats[1] = result.top1;
      stats[2 + exchange.workerIndex] = commStart - waitStart;
      const wish = stopAfter === undefined ? lifecycle.wish() : undefined;
      stats[voteSlot] = wish ? 1 : 0;
      // The first worker's checkpoints: every so often, at the end, and at the step the run stops after.
      const captureState = records !== undefined && (stopAfter === step + 1 || records.checkpointDue(step + 1, maxSteps));
      // Throws, on every worker alike, when the averaged loss or gradient norm is not finite: nothing of the step is applied.
      const output = await exchange.step(params, { step, learningRate, local: result.local, stats, captureState });
      const commEnd = performance.now();
      if (ema) updateEma(ema, params, emaDecayAt(options.emaDecay, step));
      replicas.setParameters(params);
      step++;
      if (records) {
        const times = Array.from(output.stats.subarray(2), (t) => t * workers);
        const slowest = times.indexOf(Math.max(...times));
        const stepMs = performance.now() - waitStart;
        records.step({
          step, epoch: step / stepsPerEpoch, images: step * options.globalBatch, loss: output.stats[0]!, top1: output.stats[1]!, learningRate,
          gradNorm: output.gradNorm, dataMs: computeStart - waitStart, computeMs: commStart - computeStart + performance.now() - commEnd,
          commMs: commEnd - commStart, stepMs, imagesPerSecond: (options.globalBatch * 1000) / stepMs, slowestRank: options.workerRanks[slowest] ?? slowest, slowestStepMs: times[slowest]!,
        });
        if (output.optimizerState) records.checkpoint(step, params, output.optimizerState, ema);
      }
      const voters = Math.round(output.stats[voteSlot]! * workers);
      if (stopAfter === undefined && voters > 0 && step + 1 < maxSteps) {
        stopAfter = step + 1;
        // This worker's own reason when it has one by now (its signal may have come during the exchange).
        stopReason = (wish ?? lifecycle.wish())?.reason ?? 'another worker\'s signal or end time';
        if (records || wish) options.log(`stopping after step ${stopAfter} with a checkpoint: asked by ${voters} of ${workers} worker(s)${wish ? `, here for ${wish.reason}` : ''}`);
      }
      if (stopAfter === undefined && step < maxSteps && options.evalEverySteps > 0 && step % options.evalEverySteps === 0) {
        evaluations = await evaluateAll(options, params, ema, step);
      }
      const now = performance.now();
      lifecycle.stepTook(now - boundary);
      boundary = now;
      if (records?.lastCheckpointMs !== undefined) lifecycle.checkpointTook(records.lastCheckpointMs);
      if (step >= maxSteps || step === stopAfter) {
        await batches.return();
        break;
      }
    }
  }
  await exchange.finish();
  const bad = firstNonFinite(params);
  if (bad >= 0) {
    // The replicas are bitwise alike: every worker finds the same value here.
    throw new NumericalError(`the trained weights hold ${params[bad]} (value ${bad}) after step ${step}`, { hint: 'lower --learning-rate (or add --clip-norm)', everyWorker: true });
  }
  const digest = parametersDigest(params);
  // Every compute thread's replica holds what the vector holds, bit for bit.
  const replicaDigests = await replicas.digests();
  const strayReplica = replicaDigests.findIndex((d) => d !== digest);
  if (strayReplica >= 0) throw new ComputeError(`compute thread ${strayReplica}'s replica holds other weights (sha256 ${replicaDigests[strayReplica]}) than the rank's (${digest})`);
  if (step === stopAfter) {
    // No final evaluation: the time is the scheduler's. The checkpoint is on disk when this returns.
    await records?.flush();
    return { steps: step - startStep, digest, evaluations: [], startStep, stopped: { step, reason: stopReason } };
  }
  if (options.evalInput) evaluations = await evaluateAll(options, params, ema, step);
  await records?.flush();
  return { steps: step - startStep, digest, evaluations, startStep };
}

/** Evaluates the trained weights (the replicas hold them), then their moving average (if any), and leaves the trained weights in the replicas. */
async function evaluateAll(options: WorkerRunOptions, params: Float32Array, ema: Float32Array | undefined, step: number): Promise<EvalRecord[]> {
  const { replicas, evalInput, group, records } = options;
  if (!evalInput) return [];
  const epoch = step / options.schedule.stepsPerEpoch;
  const results: EvalRecord[] = [];
  for (const weights of ema ? ['trained', 'ema'] : ['trained']) {
    if (weights === 'ema') replicas.setParameters(ema!);
    const local = await evaluate(replicas, evalInput, options.evalBatches);
    // Integers added exactly, in worker order; patient, as a slower worker may finish its share later.
    const [images, top1, top5, lossSum] = await group.sumExact(Float64Array.of(local.images, local.top1, local.top5, local.lossSum));
    const evaluation: EvalRecord = { step, epoch, weights, images: images!, top1: top1! / images!, top5: top5! / images!, loss: lossSum! / images! };
    results.push(evaluation);
    if (records) {
      records.evaluation(evaluation);
      options.stdout(`eval step ${step} epoch ${epoch.toFixed(2)} weights=${weights} top1=${evaluation.top1.toFixed(4)} top5=${evaluation.top5.toFixed(4)} ` +
        `loss=${evaluation.loss.toFixed(4)} on ${images} validation images\n`);
    }
  }
  if (ema) replicas.setParameters(params);
  return results;
}
