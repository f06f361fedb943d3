// A worker's run: the common start (a checkpoint's state on a resume), the synchronous steps
// (local gradients -> exchange -> the same parameters everywhere -> moving average), and the end
// (servers stopped, evaluation of the moving average, sharded and added up). The first worker also
// keeps the run's records: a CSV row and a progress line per step, checkpoints, the summary.
import { performance } from 'node:perf_hooks';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Collectives } from '../comm/collectives.js';
import type { GradientExchange } from '../comm/types.js';
import type { InputPipeline } from '../data/types.js';
import { OptionsError } from '../errors.js';
import { emaDecayAt, updateEma } from './ema.js';
import { evaluate, type EvalCounts } from './eval.js';
import { packStep, parameterLayout, readParameters, writeParameters } from './parameters.js';
import { RunRecords } from './run-records.js';
import { learningRateAt, type Schedule } from './schedule.js';
import { computeGradients, type LossOptions } from './trainer.js';
import { parametersDigest } from './weights.js';

export interface WorkerRunOptions {
  model: tfl.LayersModel;
  input: InputPipeline;
  /** The validation split, opened after training (its decoders then have the cores), when there is one to evaluate. */
  openEvalInput(): Promise<InputPipeline | undefined>;
  /** Batches each worker evaluates; 0: its whole shard. */
  evalBatches: number;
  exchange: GradientExchange;
  /** The workers (not the servers), for the start and the evaluation. */
  group: Collectives;
  maxSteps: number;
  schedule: Schedule;
  loss: LossOptions;
  /** 0: no moving average. */
  emaDecay: number;
  /** The first worker's record keeping; undefined on the others. */
  records: RunRecords | undefined;
  globalBatch: number;
  /** Each worker's rank in the job, to name the slowest. */
  workerRanks: readonly number[];
  stdout(text: string): void;
  log(line: string): void;
}

export interface WorkerRunResult {
  steps: number;
  /** sha256 of the final parameters: the same on every worker. */
  digest: string;
  eval: EvalCounts | undefined;
}

export async function runWorker(options: WorkerRunOptions): Promise<WorkerRunResult> {
  const { model, input, exchange, group, records, maxSteps } = options;
  const layout = parameterLayout(model);
  const params = new Float32Array(layout.totalLength);
  readParameters(model, layout, params);
  const resumed = records ? await records.resume(layout) : undefined;
  if (resumed) params.set(resumed.weights);
  // Every worker learns where the first one starts: a step count is exact in float32 below 2^24.
  const start = Float32Array.of(resumed?.step ?? 0);
  await group.broadcast(start, 0);
  const startStep = start[0]!;
  await exchange.start(params, resumed?.state);
  const ema = options.emaDecay > 0 ? (resumed?.ema ?? params.slice()) : undefined;
  if (ema && startStep > 0) await group.broadcast(ema, 0);
  writeParameters(model, layout, params);
  records?.begin(startStep);

  const local = new Float32Array(layout.totalLength);
  const workers = exchange.workers;
  // Each step's figures, averaged over the workers: loss, top-1, then each worker's time to reach the exchange in its own slot.
  const stats = new Float32Array(2 + workers);
  const { stepsPerEpoch } = options.schedule;
  let step = startStep;
  while (step < maxSteps) {
    const epoch = Math.floor(step / stepsPerEpoch);
    const batches = input.epoch(epoch, step % stepsPerEpoch);
    for (;;) {
      const waitStart = performance.now();
      const next = await batches.next();
      if (next.done) break;
      const computeStart = performance.now();
      const learningRate = learningRateAt(step, options.schedule);
      const result = computeGradients(model, next.value, options.loss);
      if (!Number.isFinite(result.loss)) throw new OptionsError(`the loss became ${result.loss} at step ${step + 1}`, 'lower --learning-rate');
      packStep(result.gradients, model, layout, local);
      const commStart = performance.now();
      stats.fill(0);
      stats[0] = result.loss;
      stats[1] = result.top1;
      stats[2 + exchange.workerIndex] = commStart - waitStart;
      const captureState = records?.checkpointDue(step + 1, maxSteps) ?? false;
      const output = await exchange.step(params, { step, learningRate, local, stats, captureState });
      const commEnd = performance.now();
      if (ema) updateEma(ema, params, emaDecayAt(options.emaDecay, step));
      writeParameters(model, layout, params);
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
      if (step >= maxSteps) {
        await batches.return();
        break;
      }
    }
  }
  await exchange.finish();
  await records?.flush();
  const digest = parametersDigest(params);
  let evalCounts: EvalCounts | undefined;
  const evalInput = await options.openEvalInput();
  if (evalInput) {
    if (ema) writeParameters(model, layout, ema);
    let local: EvalCounts;
    try {
      local = await evaluate(model, evalInput, options.evalBatches);
    } finally {
      await evalInput.close();
    }
    const counts = Float32Array.of(local.images, local.top1, local.top5);
    await group.allreduceMean(counts);
    const [images, top1, top5] = Array.from(counts, (mean) => Math.round(mean * workers));
    evalCounts = { images: images!, top1: top1!, top5: top5! };
  }
  return { steps: step - startStep, digest, eval: evalCounts };
}
