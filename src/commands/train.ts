// `hpctrain train`: Inception-V3, synchronous and data-parallel over the job's ranks (one rank
// outside a scheduler). Every rank joins the job (train-group.ts); parameter servers (--strategy
// ps) then serve their shard until the workers stop them, needing no tensor backend. A worker's
// run reads as its data flow: where it computes (train-compute.ts: GPU, cores, backend, threads),
// its input (train-input.ts), the plan (train-plan.ts: steps, recipe), its model replicas
// (compute/open-replicas.ts), the exchange, when to stop early (train-lifecycle.ts: signals, the
// job's end), the steps (train/loop.ts), and on the first worker the run's records
// (train-records.ts).
import { createHash } from 'node:crypto';
import type { Placement } from '../comm/placement.js';
import type { Strategy } from '../comm/types.js';
import { OptionsError } from '../errors.js';
import type { OptionValues } from '../options.js';
import type { SignalName } from '../signals.js';
import { readJoinOptions } from './job-options.js';
import { readModelArgs } from './model.js';
import type { ComputePlan } from './train-compute.js';
import { openTrainGroup, type TrainGroup } from './train-group.js';
import type { TrainInputs } from './train-input.js';
import { TRAIN_OPTIONS } from './train-options.js';
import type { Command, CommandContext } from './types.js';

export const trainCommand: Command = {
  spec: {
    name: 'train',
    usage: 'hpctrain train [--data synthetic|DIR] [--batch-size B] [--steps N | --epochs E] [--strategy allreduce|ps --num-ps K] [options]',
    summary:
      'Train Inception-V3 on every rank of the job (srun, aprun, mpirun or hpctrain launch; one rank\n' +
      'outside them), synchronously: every step, each worker\'s gradients on its own shard of the data are\n' +
      'averaged (ring allreduce, or parameter servers) and every worker applies the same update, with the\n' +
      'settings of --recipe (default: AdamW, short warm-up, cosine decay) and the flags that override it.\n' +
      'The first worker writes metrics.csv, eval.csv, checkpoints and summary.json to the run directory,\n' +
      'prints a line per step, and evaluates top-1/top-5 on the validation split every --eval-every\n' +
      'epochs and at the end (the trained weights, and their moving average when there is one).\n' +
      'Every worker prints a digest of its final weights: they are the same on every worker.',
    options: TRAIN_OPTIONS,
    details:
      '--num-classes applies to synthetic data and TFRecord shards; an ILSVRC2012 directory\'s class\n' +
      'folders decide it. --batch-size is per worker; the default learning rate scales with the global\n' +
      'batch, batch x workers. A step whose averaged loss or gradient norm is not finite is applied\n' +
      'nowhere: every rank stops with an error naming the step. A job restarted with the same run\n' +
      'directory (a requeued Slurm job keeps its id, so its default directory) resumes from its newest\n' +
      'valid checkpoint. On the wasm backend a batch whose step cannot fit in its 4 GiB heap is refused\n' +
      'before the first step.\n' +
      'On --requeue-signal or SIGTERM (or when the job\'s known end comes near: --stop-margin), every worker\n' +
      'stops after the same step, the first writes a checkpoint and <run dir>/stopped.json, and every\n' +
      'rank exits with status 75: "checkpointed, requeue me". The same command with the same run\n' +
      'directory goes on from there, and ends on the weights an uninterrupted run would have.',
  },
  async run(values: OptionValues, _positionals: string[], context: CommandContext): Promise<number> {
    const strategy = values.strategy as Strategy;
    const numPs = values['num-ps'] as number;
    if (strategy === 'ps' && numPs < 1) throw new OptionsError('--strategy ps needs parameter servers', 'add --num-ps K (K >= 1): the first K ranks become servers');
    if (strategy === 'allreduce' && numPs > 0) {
      throw new OptionsError(`--num-ps ${numPs} applies to --strategy ps; the allreduce strategy has no parameter servers`, 'add --strategy ps, or drop --num-ps / HPCTRAIN_NUM_PS');
    }
    // Claimed from the start, not once the steps begin: a scheduler's warning that comes while the
    // rank joins the job, loads its backend or builds the model is kept for the lifecycle (which
    // then stops after the second step, with a checkpoint) instead of ending the rank unsaved.
    const { requeueSignalOf } = await import('./train-lifecycle.js');
    const requeueSignal = requeueSignalOf(values);
    context.signals?.claim([requeueSignal]);
    const group = await openTrainGroup(readJoinOptions(values), strategy, values['comm-timeout'] as number, context);
    let finished = false;
    try {
      const status = group.isServer ? await serve(group, requeueSignal, context) : await trainOnWorker(values, context, group);
      finished = true;
      return status;
    } finally {
      await group.close(finished);
    }
  },
};

async function serve(group: TrainGroup, requeueSignal: SignalName, context: CommandContext): Promise<number> {
  // The workers decide when to stop, and stop the servers: a signal here is only noted.
  context.signals?.claim([requeueSignal, 'SIGTERM']);
  const unwatch = context.signals?.watch((signal) => group.log(`parameter server ${group.rank}: got ${signal}; serving until the workers stop, after their checkpoint`));
  const { runParameterServer } = await import('../comm/parameter-server.js');
  const result = await runParameterServer({
    link: group.link, firstWorker: group.workers[0]!, log: group.log, markDeparted: (rank) => group.markDeparted(rank),
  });
  unwatch?.();
  group.log(`parameter server ${group.rank}: served ${result.steps} steps of ${result.shardLength.toLocaleString('en-US')} values; stopping`);
  return 0;
}

/**
 * A worker's run, stage by stage as the data flows: where it computes (backend, GPU, cores,
 * threads), its input, its model replicas, the recipe and the exchange, the records, the steps.
 */
async function trainOnWorker(values: OptionValues, context: CommandContext, group: TrainGroup): Promise<number> {
  const log = group.log;
  const first = group.workerIndex === 0;
  const { chooseCompute } = await import('./train-compute.js');
  const compute = await chooseCompute(values, context, group);
  if (first) for (const attempt of compute.attempts) log(`backend ${attempt.name}: ${attempt.ok ? 'chosen' : 'passed over'}: ${attempt.reason}`);
  if (first) for (const note of compute.notes) log(note);
  const { openTrainInputs } = await import('./train-input.js');
  const inputs = await openTrainInputs(values, { index: group.workerIndex, count: group.workers.length }, compute.decodeThreads, first ? log : undefined);
  try {
    return await trainModel(values, context, group, inputs, compute);
  } finally {
    await inputs.close();
  }
}

async function trainModel(values: OptionValues, context: CommandContext, group: TrainGroup, inputs: TrainInputs, compute: ComputePlan): Promise<number> {
  const { planRun } = await import('./train-plan.js');
  const { openRunRecords, reportRun, runDirOf } = await import('./train-records.js');
  const { openReplicas } = await import('../compute/open-replicas.js');
  const { decayedVariables } = await import('../compute/parameters.js');
  const { describeRecipe } = await import('../train/recipe.js');
  const { batchNormWarning } = await import('../train/batch-norm-check.js');
  const { runWorker, statsLength } = await import('../train/loop.js');
  const { openLifecycle, clearStopped, writeStopped } = await import('./train-lifecycle.js');
  const { REQUEUE_STATUS } = await import('../train/lifecycle.js');
  const { input, evalInput, evalBatches } = inputs;
  const log = group.log;
  const first = group.workerIndex === 0;
  const batchSize = values['batch-size'] as number;
  const imageSize = values['image-size'] as number;
  const strategy = values.strategy as Strategy;
  const workers = group.workers.length;
  const plan = await planRun(values, workers, input.stepsPerEpoch);
  const { recipe, maxSteps } = plan;
  const { replicas, parameters } = await openReplicas({
    backend: compute.backend, threads: compute.computeThreads, batchSize,
    modelArgs: { ...readModelArgs(values, values.seed as number), numClasses: input.numClasses },
    loss: { numClasses: input.numClasses, labelSmoothing: recipe.labelSmoothing, auxLossWeight: recipe.auxLossWeight },
  });
  try {
    const layout = replicas.layout;
    const decayed = decayedVariables(layout);
    // Before the exchange depends on it: what each worker worked out alone is the same on all.
    const { checkAgreement, flattenFacts } = await import('../train/agreement.js');
    const { layoutDigest } = await import('../compute/parameters.js');
    await checkAgreement(group.workerGroup, group.workerIndex, group.workers, {
      data: String(values.data), numClasses: input.numClasses, classes: input.classes ? sha256(input.classes.join(',')) : null, stepsPerEpoch: input.stepsPerEpoch,
      batchSize, imageSize, maxSteps, globalBatch: plan.globalBatch, strategy, servers: group.servers.length,
      ...flattenFacts('recipe', recipe), seed: values.seed as number, model: layoutDigest(layout), resume: String(values.resume),
    });
    const exchange = await group.exchange({
      trainableLength: layout.trainableLength, totalLength: layout.totalLength, variableLengths: layout.entries.map((e) => e.length), decayed,
      optimizer: recipe.optimizer, clipNorm: recipe.clipNorm, statsLength: statsLength(workers),
    }, values['ps-placement'] as Placement, replicas);
    const runDir = runDirOf(values, group.jobId);
    if (first) {
      log(`Inception-V3 ${imageSize}x${imageSize}, ${input.numClasses} classes, ${parameters.toLocaleString('en-US')} parameters; ` +
        `batch ${batchSize}${workers > 1 ? ` per worker x ${workers} workers` : ''}, ${maxSteps} steps on ${compute.backend}` +
        `${replicas.threads > 1 ? ` with ${replicas.threads} compute threads` : ''}, ` +
        `${strategy === 'ps' ? `${group.servers.length} parameter server(s), variables placed by ${String(values['ps-placement'])}` : 'ring allreduce'}`);
      log(describeRecipe(recipe, decayed.filter(Boolean).length));
      const warning = batchNormWarning(batchSize, imageSize);
      if (warning) log(warning);
      log(`run directory ${runDir}`);
    }
    const records = first ? await openRunRecords(values, context, plan, input, { runDir, workers, log }) : undefined;
    if (first) await clearStopped(runDir);
    const stop = await openLifecycle(values, context, { scheduler: group.scheduler, jobId: group.jobId, first, log });
    const result = await runWorker({
      replicas, input, evalInput, evalBatches, evalEverySteps: plan.evalEverySteps,
      exchange, group: group.workerGroup, maxSteps, schedule: recipe.schedule, emaDecay: recipe.emaDecay,
      records, globalBatch: plan.globalBatch, workerRanks: group.workers, lifecycle: stop.lifecycle, stdout: context.stdout, log,
    }).finally(() => stop.close());
    if (result.stopped) {
      // The checkpoint is on disk; the ranks leave together (group.close), none before it is.
      const { step, reason } = result.stopped;
      if (first) {
        await writeStopped(runDir, { reason, step, startStep: result.startStep, maxSteps });
        context.stdout(`stopped at step ${step} of ${maxSteps} (${reason}), with a checkpoint: run the same command with --run-dir ${runDir} to go on\n`);
      }
      context.stdout(`weights sha256=${result.digest} at step ${step}\n`);
      return REQUEUE_STATUS;
    }
    if (records) {
      await reportRun(records, result, plan, context, {
        runDir, strategy, workers, servers: group.servers.length, backend: compute.backend, computeThreads: replicas.threads, trainableParameters: layout.trainableLength,
        job: { scheduler: group.scheduler, launcher: group.launcher, id: group.jobId, ranks: group.size, hosts: group.hosts, nodes: group.hosts.length }, log,
      });
    }
    if (first && replicas.threads > 1) log(`the replicas of all ${replicas.threads} compute threads hold these weights, bit for bit`);
    context.stdout(`weights sha256=${result.digest}\n`);
    return 0;
  } finally {
    await replicas.close();
  }
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);
