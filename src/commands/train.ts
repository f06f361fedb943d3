// `hpctrain train`: Inception-V3 on one rank: backend, input pipeline, model, optimizer, and the
// step loop with a progress line per step.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { bindGpu, readGpus } from '../backend/gpus.js';
import { BACKEND_CHOICES, type BackendName } from '../backend/select.js';
import { OptionsError } from '../errors.js';
import { createLog } from '../log.js';
import type { OptionValues } from '../options.js';
import { MODEL_OPTIONS, readModelArgs } from './model.js';
import type { Command, CommandContext } from './types.js';

export const trainCommand: Command = {
  spec: {
    name: 'train',
    usage: 'hpctrain train [--data synthetic|DIR] [--batch-size B] [--image-size S] [--steps N | --epochs E] [options]',
    summary:
      'Train Inception-V3 as one rank: pick the fastest backend that works, read ImageNet (an\n' +
      'ILSVRC2012 directory or TFRecord shards, detected) or synthetic data, and run RMSProp steps,\n' +
      'printing one line per step. Data-parallel training over several ranks comes next.',
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
        defaultText: '0.045 x batch / 1600 (the paper\'s rate, scaled linearly)', describe: 'RMSProp learning rate (decay 0.9, momentum 0.9, epsilon 1.0)' },
      { name: 'label-smoothing', type: 'number', default: 0.1, min: 0, max: 1, valueName: 'X', describe: 'label smoothing of the cross-entropy' },
      { name: 'aux-loss-weight', type: 'number', default: 0.4, min: 0, valueName: 'W', describe: 'weight of the auxiliary loss with --aux-logits' },
      { name: 'seed', type: 'integer', env: 'HPCTRAIN_SEED', default: 1, min: 0, max: 2 ** 32 - 1, valueName: 'SEED', describe: 'seeds the weights, the data order and the crops' },
      { name: 'threads', type: 'integer', env: 'HPCTRAIN_DECODE_THREADS', min: 1, max: 256, valueName: 'N',
        defaultText: 'CPUs - 1, at least 1', describe: 'image decoding threads' },
      { name: 'prefetch', type: 'integer', default: 2, min: 0, max: 64, valueName: 'N', describe: 'batches decoded ahead of the step' },
    ],
    details:
      '--num-classes applies to synthetic data and TFRecord shards; an ILSVRC2012 directory\'s class\n' +
      'folders decide it. On the wasm backend a batch whose step cannot fit in its 4 GiB heap is refused\n' +
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

    const { openInput } = await import('../data/input.js');
    const seed = values.seed as number;
    const batchSize = values['batch-size'] as number;
    const imageSize = values['image-size'] as number;
    const input = await openInput({
      data: values.data as string, split: 'train', batchSize, imageSize, rank: 0, size: 1, seed,
      threads: (values.threads as number | undefined) ?? Math.max(1, cpus().length - 1),
      prefetch: values.prefetch as number,
      numClasses: values['num-classes'] as number,
      onBadImage: (bad) => log(`skipping ${bad.path}: ${bad.reason}`),
    });
    try {
      log(input.description);
      return await trainLoop(values, context, log, input, backend.name, seed, batchSize, imageSize);
    } finally {
      await input.close();
    }
  },
};

async function trainLoop(
  values: OptionValues, context: CommandContext, log: (line: string) => void,
  input: import('../data/types.js').InputPipeline, backendName: BackendName, seed: number, batchSize: number, imageSize: number,
): Promise<number> {
  const { tf } = await import('../backend/tf.js');
  const { buildInceptionV3 } = await import('../model/inception-v3.js');
  const { assertStepFits, estimateStepMemory } = await import('../train/memory.js');
  const { trainStep } = await import('../train/trainer.js');
  const { scaledLearningRate } = await import('../train/schedule.js');
  const modelArgs = { ...readModelArgs(values, seed), numClasses: input.numClasses };
  const model = buildInceptionV3(modelArgs);
  if (backendName === 'wasm') assertStepFits(estimateStepMemory(model), batchSize, imageSize);
  const learningRate = (values['learning-rate'] as number | undefined) ?? scaledLearningRate(batchSize);
  const optimizer = tf.train.rmsprop(learningRate, 0.9, 0.9, 1.0);
  const maxSteps = (values.steps as number) || Math.ceil((values.epochs as number) * input.stepsPerEpoch);
  if (maxSteps === 0) throw new OptionsError('nothing to do: --steps 0 and --epochs 0');
  log(`Inception-V3 ${imageSize}x${imageSize}, ${input.numClasses} classes, ${model.countParams().toLocaleString('en-US')} parameters; ` +
    `batch ${batchSize}, learning rate ${learningRate}, ${maxSteps} steps on ${backendName}`);
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
      const result = trainStep(model, optimizer, next.value, lossOptions);
      const now = performance.now();
      step++;
      lossSum += result.loss;
      if (!Number.isFinite(result.loss)) throw new OptionsError(`the loss became ${result.loss} at step ${step}`, 'lower --learning-rate');
      context.stdout(
        `step ${step}/${maxSteps} epoch ${epoch} loss=${result.loss.toFixed(4)} top1=${result.top1.toFixed(3)} ` +
          `img_per_s=${((next.value.batchSize * 1000) / (now - waitStart)).toFixed(2)} data_ms=${(computeStart - waitStart).toFixed(0)} ` +
          `compute_ms=${(now - computeStart).toFixed(0)}\n`,
      );
      if (step >= maxSteps) {
        await batches.return();
        break;
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  context.stdout(`trained ${step} steps in ${seconds.toFixed(1)} s: ${((step * batchSize) / seconds).toFixed(2)} images/s, mean loss ${(lossSum / step).toFixed(4)}\n`);
  model.dispose();
  optimizer.dispose();
  return 0;
}
