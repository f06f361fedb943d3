// One configuration of the step benchmark, in a process of its own: load the backend, build
// Inception-V3, time RMSProp training steps on one random batch, and print one JSON line (a
// StepReport) on stdout. Started by bench/step.ts, which gives the configuration as JSON in argv[2].
// A fresh process per configuration because the wasm heap never shrinks, and so that one crash
// or out-of-memory spoils one figure only.
import { performance } from 'node:perf_hooks';
import { readGpus } from '../src/backend/gpus.js';
import { selectBackend, type BackendName } from '../src/backend/select.js';
import { tf } from '../src/backend/tf.js';
import { SyntheticInput } from '../src/data/synthetic.js';
import { OptionsError } from '../src/errors.js';
import { buildInceptionV3 } from '../src/model/inception-v3.js';
import { estimateStepMemory, largestBatchThatFits, WASM_HEAP_LIMIT_BYTES } from '../src/compute/memory.js';
import { defaultLearningRate } from '../src/train/recipe.js';
import { trainableVariables, trainStep } from '../src/compute/trainer.js';

export interface StepConfig {
  backend: BackendName;
  batch: number;
  size: number;
  warmup: number;
  steps: number;
  seed: number;
}

export type StepReport =
  | { kind: 'step'; backend: BackendName; batch: number; size: number; stepMs: number[]; loss: number; loaded: string; largestBatch?: number }
  /** The backend does not load here; the bench skips its other configurations too. */
  | { kind: 'unavailable'; backend: BackendName; reason: string; fix?: string }
  /** wasm only: the estimated step memory is over the heap limit; largestBatch may still fit. */
  | { kind: 'too-big'; backend: BackendName; batch: number; size: number; reason: string; largestBatch: number };

const NUM_CLASSES = 1000;

async function run(config: StepConfig): Promise<StepReport> {
  const { backend, batch, size } = config;
  // Only tfjs-node-gpu needs to know the GPUs, and nvidia-smi costs a second when it is absent.
  const gpuCount = backend === 'tfjs-node-gpu' ? (await readGpus()).gpus.length : 0;
  let loaded: string;
  try {
    const selected = await selectBackend(backend, gpuCount);
    loaded = selected.attempts.at(-1)!.reason;
  } catch (error) {
    if (!(error instanceof OptionsError)) throw error;
    return { kind: 'unavailable', backend, reason: error.message.replace(/^--backend \S+: /, ''), ...(error.hint ? { fix: error.hint } : {}) };
  }

  const model = buildInceptionV3({ imageSize: size, numClasses: NUM_CLASSES, auxLogits: false, seed: config.seed });
  let largestBatch: number | undefined;
  if (backend === 'wasm') {
    const memory = estimateStepMemory(model);
    largestBatch = largestBatchThatFits(memory);
    if (batch > largestBatch) {
      const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
      const reason = `needs about ${gib(memory.fixedBytes + memory.perImageBytes * batch)} GiB of wasm memory by the estimate ` +
        `and the wasm heap holds at most ${gib(WASM_HEAP_LIMIT_BYTES)} GiB; the largest batch that fits at ${size}x${size} is ${largestBatch}`;
      model.dispose();
      return { kind: 'too-big', backend, batch, size, reason, largestBatch };
    }
  }

  const input = new SyntheticInput({ split: 'train', batchSize: batch, imageSize: size, rank: 0, size: 1, seed: config.seed, numClasses: NUM_CLASSES });
  const first = await input.epoch().next();
  if (first.done) throw new Error('the synthetic input gave no batch');
  const optimizer = tf.train.rmsprop(defaultLearningRate('rmsprop', batch), 0.9, 0.9, 1.0);
  const lossOptions = { numClasses: NUM_CLASSES, labelSmoothing: 0.1, auxLossWeight: 0.4 };
  // trainStep returns once it has the loss; the update it queued after that is fenced by reading
  // the last variable it wrote (the classifier's bias), so that a step includes its whole update
  // on a backend that runs asynchronously (tfjs-node-gpu).
  const lastVariable = trainableVariables(model).at(-1)!;
  const stepMs: number[] = [];
  let loss = Number.NaN;
  for (let step = 0; step < config.warmup + config.steps; step++) {
    const started = performance.now();
    loss = trainStep(model, optimizer, first.value, lossOptions).loss;
    lastVariable.dataSync();
    const elapsed = performance.now() - started;
    if (step >= config.warmup) stepMs.push(elapsed);
    process.stderr.write(`step-worker ${backend} batch=${batch} size=${size}: ${step < config.warmup ? 'warm-up' : 'timed'} step ${step + 1} ` +
      `${elapsed.toFixed(1)} ms loss=${loss.toFixed(4)}\n`);
  }
  if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss}: the step computed garbage`);
  model.dispose();
  optimizer.dispose();
  await input.close();
  return { kind: 'step', backend, batch, size, stepMs, loss, loaded, ...(largestBatch === undefined ? {} : { largestBatch }) };
}

try {
  const config = JSON.parse(process.argv[2] ?? '') as StepConfig;
  const report = await run(config);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`step-worker FAILED: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
