// `hpctrain train`: Inception-V3, synchronous and data-parallel over the job's ranks (one rank
// outside a scheduler): backend, rendezvous and gradient exchange, input pipeline (each rank its
// shard), model (rank 0's weights everywhere), optimizer, and the step loop with a progress line
// per step from rank 0.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { bindGpu, readGpus } from '../backend/gpus.js';
import { BACKEND_CHOICES, type BackendName } from '../backend/select.js';
import { OptionsError } from '../errors.js';
import { createLog } from '../log.js';
import type { OptionValues } from '../options.js';
import { JOB_OPTIONS, readJoinOptions } from './job-options.js';
import { MODEL_OPTIONS, readModelArgs } from './model.js';
import type { Command, CommandContext } from './types.js';

export const trainCommand: Command = {
  spec: {
    name: 'train',
    usage: 'hpctrain train [--data synthetic|DIR] [--batch-size B] [--image-size S] [--steps N | --epochs E] [options]',
    summary:
      'Train Inception-V3 on every rank of the job (srun, aprun, mpirun or hpctrain launch; one rank\n' +
      'outside them): pick the fastest backend that works, read ImageNet (an ILSVRC2012 directory or\n' +
      'TFRecord shards, detected) or synthetic data, each rank its own shard, and run synchronous\n' +
      'RMSProp steps on gradients averaged over the ranks (ring allreduce), rank 0 printing one line\n' +
      'per step. Every rank prints a digest of its final weights: they are the same on every rank.',
    options: [
      { name: 'backend', type: 'string', env: 'HPCTRAIN_BACKEND', default: 'auto', choices: BACKEND_CHOICES, valueName: 'NAME',
        describe: 'tensor backend; auto takes tfjs-node-gpu (with a GPU), tfjs-node, wasm, cpu: the first that works' },
      { name: 'data', type: 'string', env: 'HPCTRAIN_DATA', default: 'synthetic', valueName: 'synthetic|DIR',
        describe: 'ImageNet as train/<wnid>/*.JPEG or TFRecord shards (train-00000-of-01024), or random images' },
      ...MODEL_OPTIONS,
      { name: 'batch-size', type: 'integer', env: 'HPCTRAIN_BATCH_SIZE', default: 8, min: 1, valueName: 'B', describe: 'images per step' },
      { name: 'steps', type: 'integer', env: 'HPCTRAIN_STEPS', default: 0, min: 0, valueName: 'N', describe: 'stop after N steps (0: run --epochs)' },
      { name: 'epochs', type: 'number', env: 'HPCTRAIN_EPOCHS', default: 1, min: 0, valueName: 'E', describe: 'passes over the training data' },
      { name: 'learning-rate', type: 'number', env: 'HPCTRAIN_LEARNING_RATE', min: 0, valueName: 'LR',
        defaultText: '0.045 x global batch / 1600 (the paper\'s rate, scaled linearly)', describe: 'RMSProp learning rate after warm-up (decay 0.9, momentum 0.9, epsilon 1.0)' },
      { name: 'warmup-epochs', type: 'number', env: 'HPCTRAIN_WARMUP_EPOCHS', default: 2, min: 0, valueName: 'E',
        describe: 'linear warm-up of the learning rate over the first E epochs (0: none)' },
      { name: 'lr-decay', type: 'number', default: 0.94, min: 0, max: 1, valueName: 'X', describe: 'multiply the learning rate by X every --lr-decay-epochs epochs' },
      { name: 'lr-decay-epochs', type: 'number', default: 2, min: 0.001, valueName: 'E', describe: 'epochs between learning-rate decays' },
      { name: 'clip-norm', type: 'number', env: 'HPCTRAIN_CLIP_NORM', default: 2, min: 0, valueName: 'N',
        describe: 'scale the averaged gradients down to global norm N when above it (0: no clipping)' },
      { name: 'label-smoothing', type: 'number', default: 0.1, min: 0, max: 1, valueName: 'X', describe: 'label smoothing of the cross-entropy' },
      { name: 'aux-loss-weight', type: 'number', default: 0.4, min: 0, valueName: 'W', describe: 'weight of the auxiliary loss with --aux-logits' },
      { name: 'seed', type: 'integer', env: 'HPCTRAIN_SEED', default: 1, min: 0, max: 2 ** 32 - 1, valueName: 'SEED', describe: 'seeds the weights, the data order and the crops' },
      { name: 'threads', type: 'integer', env: 'HPCTRAIN_DECODE_THREADS', min: 1, max: 256, valueName: 'N',
        defaultText: 'CPUs - 1, at least 1', describe: 'image decoding threads' },
      { name: 'prefetch', type: 'integer', default: 2, min: 0, max: 64, valueName: 'N', describe: 'batches decoded ahead of the step' },
      // Parameter servers (--num-ps) are the next strategy; until then train takes the ring only.
      ...JOB_OPTIONS.filter((option) => option.name !== 'num-ps'),
      { name: 'comm-timeout', type: 'number', env: 'HPCTRAIN_COMM_TIMEOUT', default: 600, min: 1, valueName: 'SECONDS',
        describe: 'how long a rank waits for a peer\'s gradients before the job is aborted (a dead or hung peer is found sooner, by its connection)' },
    ],
    details:
      '--num-classes applies to synthetic data and TFRecord shards; an ILSVRC2012 directory\'s class\n' +
      'folders decide it. --batch-size is per rank; the default learning rate scales with the global\n' +
      'batch, batch x ranks. On the wasm backend a batch whose step cannot fit in its 4 GiB heap is refused\n' +
      'before the first step, with the largest batch that fits.',
  },
  async run(values: OptionValues, _positionals: string[], context: CommandContext): Promise<number> {
    const log = createLog(context.io.stderr, 'train');
    const { gpus } = await readGpus();
    const binding = bindGpu(context.env.CUDA_VISIBLE_DEVICES, 0, gpus.length);
    // tfjs-node-gpu reads CUDA_VISIBLE_DEVICES when it loads, so it is set before selection.
    if (binding.cudaVisibleDevices !== undefined) process.env.CUDA_VISIBLE_DEVICES = binding.cudaVisibleDevices;
    const { selectBackend } = await import('../backend/select.js');
    const backend = await selectBackend(values.backend as BackendName | 'auto', gpus.length);
    for (const attempt of backend.attempts) log(`backend ${attempt.name}: ${attempt.ok ? 'chosen' : 'passed over'}: ${attempt.reason}`);
    if (gpus.length > 0) log(binding.describe);

    const numPs = context.env.HPCTRAIN_NUM_PS;
    if (numPs !== undefined && numPs !== '' && numPs !== '0') {
      throw new OptionsError(`HPCTRAIN_NUM_PS=${numPs}: train has no parameter-server strategy yet; it averages gradients with a ring allreduce`,
        'unset HPCTRAIN_NUM_PS (it applies to `hpctrain rendezvous`)');
    }
    const { detectEnv } = await import('../env/detect.js');
    const joinOptions = readJoinOptions({ ...values, 'num-ps': 0 });
    const single = detectEnv(context.env, joinOptions.scheduler, context.io).size === 1;
    const group = single ? undefined : await openGroup(joinOptions, values, context);
    let finished = false;
    try {
      const status = await trainWith(values, context, log, backend.name, group);
      finished = true;
      return status;
    } finally {
      await group?.close(finished);
    }
  },
};

/** The ranks of a multi-rank job, joined and connected for the gradient exchange. */
interface Group {
  rank: number;
  size: number;
  collectives: import('../comm/collectives.js').Collectives;
  /** After a normal end (`finished`), first a barrier: so that no rank takes another's exit for a death. */
  close(finished: boolean): Promise<void>;
}

async function openGroup(joinOptions: import('../join-job.js').JoinOptions, values: OptionValues, context: CommandContext): Promise<Group> {
  const { joinJob } = await import('../join-job.js');
  const { servicePorts } = await import('../cluster/cluster-spec.js');
  const { deriveCommKey } = await import('../comm/frames.js');
  const { Transport } = await import('../comm/transport.js');
  const { Collectives } = await import('../comm/collectives.js');
  const joined = await joinJob(joinOptions, context.env, context.io);
  const table = joined.rendezvous.table;
  const ports = servicePorts(table, joined.port);
  try {
    // The pids make this run's key differ from any earlier run's under the same job id and
    // secret (a requeued job), so that no (key, nonce) pair is ever used twice.
    const session = `${joined.job.jobId}/${table.map((member) => member.pid).join(',')}`;
    const transport = await Transport.open({
      rank: joined.job.rank,
      peers: table.map((member) => ({ rank: member.rank, host: member.host, address: member.address, port: ports[member.rank]! })),
      key: deriveCommKey(context.env.HPCTRAIN_SECRET ?? 'no secret: unauthenticated', session),
      timeoutMs: (values['comm-timeout'] as number) * 1000,
      log: joined.log,
    });
    const collectives = new Collectives(transport);
    return {
      rank: joined.job.rank,
      size: joined.job.size,
      collectives,
      close: async (finished) => {
        try {
          if (finished) await collectives.barrier();
        } finally {
          await transport.close();
          await joined.rendezvous.close();
        }
      },
    };
  } catch (error) {
    await joined.rendezvous.close();
    throw error;
  }
}

async function trainWith(values: OptionValues, context: CommandContext, log: (line: string) => void, backendName: BackendName, group: Group | undefined): Promise<number> {
    const { openInput } = await import('../data/input.js');
    const seed = values.seed as number;
    const batchSize = values['batch-size'] as number;
    const imageSize = values['image-size'] as number;
    const input = await openInput({
      data: values.data as string, split: 'train', batchSize, imageSize, rank: group?.rank ?? 0, size: group?.size ?? 1, seed,
      threads: (values.threads as number | undefined) ?? Math.max(1, cpus().length - 1),
      prefetch: values.prefetch as number,
      numClasses: values['num-classes'] as number,
      onBadImage: (bad) => log(`skipping ${bad.path}: ${bad.reason}`),
    });
    try {
      if ((group?.rank ?? 0) === 0) log(input.description);
      return await trainLoop(values, context, log, input, backendName, seed, batchSize, imageSize, group);
    } finally {
      await input.close();
    }
}

async function trainLoop(
  values: OptionValues, context: CommandContext, log: (line: string) => void,
  input: import('../data/types.js').InputPipeline, backendName: BackendName, seed: number, batchSize: number, imageSize: number,
  group: Group | undefined,
): Promise<number> {
  const { tf } = await import('../backend/tf.js');
  const { buildInceptionV3 } = await import('../model/inception-v3.js');
  const { assertStepFits, estimateStepMemory } = await import('../train/memory.js');
  const { applyGradients, computeGradients } = await import('../train/trainer.js');
  const { learningRateAt, scaledLearningRate } = await import('../train/schedule.js');
  const { clipByGlobalNorm, setLearningRate } = await import('../train/clip.js');
  const { DataParallel } = await import('../train/data-parallel.js');
  const { weightsDigest } = await import('../train/weights.js');
  const modelArgs = { ...readModelArgs(values, seed), numClasses: input.numClasses };
  const model = buildInceptionV3(modelArgs);
  if (backendName === 'wasm') assertStepFits(estimateStepMemory(model), batchSize, imageSize);
  const ranks = group?.size ?? 1;
  const isRankZero = (group?.rank ?? 0) === 0;
  const parallel = group ? new DataParallel(group.collectives, model) : undefined;
  await parallel?.broadcastWeights();
  const learningRate = (values['learning-rate'] as number | undefined) ?? scaledLearningRate(batchSize * ranks);
  const optimizer = tf.train.rmsprop(learningRate, 0.9, 0.9, 1.0);
  const maxSteps = (values.steps as number) || Math.ceil((values.epochs as number) * input.stepsPerEpoch);
  const schedule = {
    peakRate: learningRate, warmupEpochs: values['warmup-epochs'] as number, decayRate: values['lr-decay'] as number,
    decayEpochs: values['lr-decay-epochs'] as number, stepsPerEpoch: input.stepsPerEpoch,
  };
  const clipNorm = values['clip-norm'] as number;
  if (maxSteps === 0) throw new OptionsError('nothing to do: --steps 0 and --epochs 0');
  if (isRankZero) {
    log(`Inception-V3 ${imageSize}x${imageSize}, ${input.numClasses} classes, ${model.countParams().toLocaleString('en-US')} parameters; ` +
      `batch ${batchSize}${ranks > 1 ? ` per rank x ${ranks} ranks` : ''}, learning rate ${learningRate}, ${maxSteps} steps on ${backendName}`);
    log(`schedule: warm-up over ${schedule.warmupEpochs} epoch(s) of ${schedule.stepsPerEpoch} steps, then x${schedule.decayRate} every ` +
      `${schedule.decayEpochs} epochs; gradients clipped to global norm ${clipNorm || 'none'}`);
  }
  const lossOptions = { numClasses: input.numClasses, labelSmoothing: values['label-smoothing'] as number, auxLossWeight: values['aux-loss-weight'] as number };
  let step = 0;
  let lossSum = 0;
  const started = performance.now();
  for (let epoch = 0; step < maxSteps; epoch++) {
    const batches = input.epoch(epoch);
    for (;;) {
      const waitStart = performance.now();
      const next = await batches.next();
      if (next.done) break;
      const computeStart = performance.now();
      const rate = learningRateAt(step, schedule);
      setLearningRate(optimizer, rate);
      const result = computeGradients(model, next.value, lossOptions);
      const commStart = performance.now();
      const gradients = parallel ? await parallel.averageGradients(result.gradients) : result.gradients;
      const commEnd = performance.now();
      const clipped = clipByGlobalNorm(gradients, clipNorm);
      applyGradients(optimizer, clipped.gradients);
      const now = performance.now();
      step++;
      lossSum += result.loss;
      if (!Number.isFinite(result.loss)) throw new OptionsError(`the loss became ${result.loss} at step ${step}`, 'lower --learning-rate');
      if (isRankZero) {
        context.stdout(
          `step ${step}/${maxSteps} epoch ${epoch} loss=${result.loss.toFixed(4)} top1=${result.top1.toFixed(3)} ` +
            `lr=${rate.toPrecision(4)} grad_norm=${clipped.norm.toFixed(3)} ` +
            `img_per_s=${((next.value.batchSize * ranks * 1000) / (now - waitStart)).toFixed(2)} data_ms=${(computeStart - waitStart).toFixed(0)} ` +
            `compute_ms=${(commStart - computeStart + now - commEnd).toFixed(0)}${parallel ? ` comm_ms=${(commEnd - commStart).toFixed(0)}` : ''}\n`,
        );
      }
      if (step >= maxSteps) {
        await batches.return();
        break;
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (isRankZero) context.stdout(`trained ${step} steps in ${seconds.toFixed(1)} s: ${((step * batchSize * ranks) / seconds).toFixed(2)} images/s, mean loss ${(lossSum / step).toFixed(4)}\n`);
  context.stdout(`weights sha256=${weightsDigest(model)}\n`);
  model.dispose();
  optimizer.dispose();
  return 0;
}
