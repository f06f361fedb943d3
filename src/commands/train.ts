// `hpctrain train`: Inception-V3, synchronous and data-parallel over the job's ranks (one rank
// outside a scheduler). Every rank joins the job; parameter servers (--strategy ps) then serve
// their shard until the workers stop them, needing no tensor backend. Workers pick a backend,
// read their shard of the data, and run the steps (train/loop.ts); the first worker keeps the
// run's records (train/run-records.ts).
import { cpus } from 'node:os';
import { join } from 'node:path';
import { bindGpu, readGpuEnv, readGpus } from '../backend/gpus.js';
import type { BackendName } from '../backend/select.js';
import type { Placement } from '../comm/placement.js';
import type { Strategy } from '../comm/types.js';
import type { InputPipeline } from '../data/types.js';
import { DataError, OptionsError } from '../errors.js';
import type { OptimizerName } from '../optim/types.js';
import type { OptionValues } from '../options.js';
import type { RecipeName, RecipeOverrides } from '../train/recipe.js';
import type { ScheduleKind } from '../train/schedule.js';
import { readJoinOptions } from './job-options.js';
import { readModelArgs } from './model.js';
import { openTrainGroup, type TrainGroup } from './train-group.js';
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
      'before the first step.',
  },
  async run(values: OptionValues, _positionals: string[], context: CommandContext): Promise<number> {
    const strategy = values.strategy as Strategy;
    const numPs = values['num-ps'] as number;
    if (strategy === 'ps' && numPs < 1) throw new OptionsError('--strategy ps needs parameter servers', 'add --num-ps K (K >= 1): the first K ranks become servers');
    if (strategy === 'allreduce' && numPs > 0) {
      throw new OptionsError(`--num-ps ${numPs} applies to --strategy ps; the allreduce strategy has no parameter servers`, 'add --strategy ps, or drop --num-ps / HPCTRAIN_NUM_PS');
    }
    const group = await openTrainGroup(readJoinOptions(values), strategy, values['comm-timeout'] as number, context);
    let finished = false;
    try {
      const status = group.isServer ? await serve(group) : await trainOnWorker(values, context, group);
      finished = true;
      return status;
    } finally {
      await group.close(finished);
    }
  },
};

async function serve(group: TrainGroup): Promise<number> {
  const { runParameterServer } = await import('../comm/parameter-server.js');
  const result = await runParameterServer({
    link: group.link, firstWorker: group.workers[0]!, log: group.log, markDeparted: (rank) => group.markDeparted(rank),
  });
  group.log(`parameter server ${group.rank}: served ${result.steps} steps of ${result.shardLength.toLocaleString('en-US')} values; stopping`);
  return 0;
}

async function trainOnWorker(values: OptionValues, context: CommandContext, group: TrainGroup): Promise<number> {
  const log = group.log;
  const { gpus } = await readGpus();
  const binding = bindGpu(readGpuEnv(context.env), gpus, group);
  // tfjs-node-gpu reads CUDA_VISIBLE_DEVICES when it loads, so it is set before selection.
  if (binding.cudaVisibleDevices !== undefined) process.env.CUDA_VISIBLE_DEVICES = binding.cudaVisibleDevices;
  log(binding.describe);
  const { selectBackend } = await import('../backend/select.js');
  const backend = await selectBackend(values.backend as BackendName | 'auto', binding.gpuCount);
  const first = group.workerIndex === 0;
  if (first) for (const attempt of backend.attempts) log(`backend ${attempt.name}: ${attempt.ok ? 'chosen' : 'passed over'}: ${attempt.reason}`);

  const { openInput } = await import('../data/input.js');
  const { DecodePool } = await import('../data/decode-pool.js');
  const data = values.data as string;
  const threads = (values.threads as number | undefined) ?? Math.max(1, cpus().length - 1);
  // One pool of decoding threads for the training and the validation split.
  const pool = data === 'synthetic' ? undefined : await DecodePool.start(threads);
  const inputOptions = {
    data, batchSize: values['batch-size'] as number, imageSize: values['image-size'] as number, rank: group.workerIndex, size: group.workers.length,
    seed: values.seed as number, threads, pool, prefetch: values.prefetch as number, numClasses: values['num-classes'] as number,
    onBadImage: (bad: { path: string; reason: string }) => log(`skipping ${bad.path}: ${bad.reason}`),
  };
  const opened: InputPipeline[] = [];
  try {
    const input = await openInput({ ...inputOptions, split: 'train' });
    opened.push(input);
    if (first) log(input.description);
    // Opened now, not after training: a missing or broken validation split shows before the first step.
    const evalBatches = (values['eval-batches'] as number | undefined) ?? (data === 'synthetic' ? 0 : undefined);
    let evalInput: InputPipeline | undefined;
    if (evalBatches !== 0) {
      try {
        evalInput = await openInput({ ...inputOptions, split: 'validation' });
        opened.push(evalInput);
        if (first) log(evalInput.description);
      } catch (error) {
        if (!(error instanceof DataError) || values['eval-batches'] !== undefined) throw error;
        if (first) log(`no evaluation: ${error.message}`);
      }
    }
    return await trainModel(values, context, group, input, evalInput, evalBatches ?? 0, backend.name);
  } finally {
    for (const pipeline of opened) await pipeline.close();
    await pool?.close();
  }
}

/** The recipe flags given (or set through HPCTRAIN_*); the rest come from --recipe. */
function readRecipeOverrides(values: OptionValues): RecipeOverrides {
  const number = (name: string) => values[name] as number | undefined;
  return {
    optimizer: values.optimizer as OptimizerName | undefined, learningRate: number('learning-rate'), warmupEpochs: number('warmup-epochs'),
    schedule: values['lr-schedule'] as ScheduleKind | undefined, decayRate: number('lr-decay'), decayEpochs: number('lr-decay-epochs'),
    clipNorm: number('clip-norm'), labelSmoothing: number('label-smoothing'), auxLossWeight: number('aux-loss-weight'), emaDecay: number('ema-decay'),
    rho: number('rho'), momentum: number('momentum'), nesterov: values.nesterov as boolean | undefined, beta1: number('beta1'), beta2: number('beta2'),
    epsilon: number('epsilon'), weightDecay: number('weight-decay'),
  };
}

async function trainModel(
  values: OptionValues, context: CommandContext, group: TrainGroup, input: InputPipeline, evalInput: InputPipeline | undefined,
  evalBatches: number, backendName: BackendName,
): Promise<number> {
  const { buildInceptionV3 } = await import('../model/inception-v3.js');
  const { assertStepFits, estimateStepMemory } = await import('../train/memory.js');
  const { describeRecipe, resolveRecipe } = await import('../train/recipe.js');
  const { batchNormWarning } = await import('../train/batch-norm-check.js');
  const { parameterLayout, decayedVariables } = await import('../train/parameters.js');
  const { runWorker } = await import('../train/loop.js');
  const { RunRecords } = await import('../train/run-records.js');
  const { formatSummary } = await import('../metrics/summary.js');
  const log = group.log;
  const first = group.workerIndex === 0;
  const seed = values.seed as number;
  const batchSize = values['batch-size'] as number;
  const imageSize = values['image-size'] as number;
  const workers = group.workers.length;
  const globalBatch = batchSize * workers;
  const model = buildInceptionV3({ ...readModelArgs(values, seed), numClasses: input.numClasses });
  try {
    if (backendName === 'wasm') assertStepFits(estimateStepMemory(model), batchSize, imageSize);
    const maxSteps = (values.steps as number) || Math.ceil((values.epochs as number) * input.stepsPerEpoch);
    if (maxSteps === 0) throw new OptionsError('nothing to do: --steps 0 and --epochs 0');
    const recipe = resolveRecipe(values.recipe as RecipeName, readRecipeOverrides(values), { globalBatch, stepsPerEpoch: input.stepsPerEpoch, totalSteps: maxSteps });
    const strategy = values.strategy as Strategy;
    const layout = parameterLayout(model);
    const decayed = decayedVariables(layout);
    const config = {
      trainableLength: layout.trainableLength, totalLength: layout.totalLength, variableLengths: layout.entries.map((e) => e.length), decayed,
      optimizer: recipe.optimizer, clipNorm: recipe.clipNorm, statsLength: 2 + workers,
    };
    const exchange = await group.exchange(config, values['ps-placement'] as Placement);
    const runDir = (values['run-dir'] as string | undefined) ?? join('runs', group.jobId);
    if (first) {
      log(`Inception-V3 ${imageSize}x${imageSize}, ${input.numClasses} classes, ${model.countParams().toLocaleString('en-US')} parameters; ` +
        `batch ${batchSize}${workers > 1 ? ` per worker x ${workers} workers` : ''}, ${maxSteps} steps on ${backendName}, ` +
        `${strategy === 'ps' ? `${group.servers.length} parameter server(s), variables placed by ${String(values['ps-placement'])}` : 'ring allreduce'}`);
      log(describeRecipe(recipe, decayed.filter(Boolean).length));
      const warning = batchNormWarning(batchSize, imageSize);
      if (warning) log(warning);
      log(`run directory ${runDir}`);
    }
    const records = first
      ? new RunRecords({
        runDir, resume: values.resume as string, keepCheckpoints: values['keep-checkpoints'] as number,
        checkpointEverySteps: values['checkpoint-every'] as number, checkpointEveryMinutes: values['checkpoint-minutes'] as number,
        meta: {
          strategy, workers, globalBatch, batchSize, seed, imageSize, numClasses: input.numClasses, auxLogits: values['aux-logits'] === true,
          classes: input.classes ?? null, data: values.data, stepsPerEpoch: input.stepsPerEpoch, recipe: recipe.name,
        },
        optimizer: recipe.optimizer.name,
        maxSteps, globalBatch, logEvery: values['log-every'] as number, terminal: context.stdoutIsTerminal === true, stdout: context.stdout, log,
      })
      : undefined;
    const result = await runWorker({
      model, input, evalInput, evalBatches, evalEverySteps: evalEverySteps(values['eval-every'] as number, input.stepsPerEpoch),
      exchange, group: group.workerGroup, maxSteps, schedule: recipe.schedule, emaDecay: recipe.emaDecay,
      loss: { numClasses: input.numClasses, labelSmoothing: recipe.labelSmoothing, auxLossWeight: recipe.auxLossWeight },
      records, globalBatch, workerRanks: group.workers, stdout: context.stdout, log,
    });
    if (records) {
      for (const evaluated of result.evaluations) {
        context.stdout(`eval top1=${evaluated.top1.toFixed(4)} top5=${evaluated.top5.toFixed(4)} loss=${evaluated.loss.toFixed(4)} ` +
          `on ${evaluated.images} validation images (${evaluated.weights === 'ema' ? 'moving average of the' : 'trained'} weights)\n`);
      }
      const summary = records.finish({ strategy, workers, servers: group.servers.length, backend: backendName, recipe });
      if (summary.steps > 0) {
        context.stdout(`trained ${summary.steps} steps in ${summary.seconds.toFixed(1)} s: ${summary.imagesPerSecond.toFixed(2)} images/s, loss ${summary.firstLoss.toFixed(4)} -> ${summary.lastLoss.toFixed(4)}\n`);
      }
      for (const line of formatSummary(summary)) log(line);
      context.stdout(`outputs in ${runDir}: metrics.csv, ${result.evaluations.length > 0 ? 'eval.csv, ' : ''}summary.json, checkpoints/\n`);
    }
    context.stdout(`weights sha256=${result.digest}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}

/** --eval-every E epochs as steps: at least one step when E > 0; 0 (at the end only) when E is 0. */
function evalEverySteps(epochs: number, stepsPerEpoch: number): number {
  return epochs > 0 ? Math.max(1, Math.round(epochs * stepsPerEpoch)) : 0;
}
