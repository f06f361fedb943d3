// One size of the step profile, in a process of its own (the wasm heap never shrinks): load the
// backend as hpctrain selects it, build Inception-V3, time plain training steps, then profile
// more with every kernel timed (bench/kernel-timer.ts), and print one JSON line (a ProfileReport).
// Started by bench/profile-step.ts with the configuration as JSON in argv[2].
import { performance } from 'node:perf_hooks';
import { selectBackend, type BackendName } from '../src/backend/select.js';
import { tf } from '../src/backend/tf.js';
import { SyntheticInput } from '../src/data/synthetic.js';
import { buildInceptionV3 } from '../src/model/inception-v3.js';
import { defaultLearningRate } from '../src/train/recipe.js';
import { applyGradients, computeGradients, trainableVariables } from '../src/compute/trainer.js';
import { KernelTimer, type KernelFigure } from './kernel-timer.js';

export interface ProfileConfig {
  backend: BackendName;
  batch: number;
  size: number;
  warmup: number;
  /** Steps timed as a whole, without the kernel timer. */
  steps: number;
  /** Steps then run with every kernel timed; the figures are their mean. */
  profiledSteps: number;
  seed: number;
}

export interface ProfileReport {
  backend: BackendName;
  batch: number;
  size: number;
  loaded: string;
  stepMs: number[];
  /** Per profiled step: wall time of the engine's forward and backward scopes, of the update, of the whole step. */
  phaseMs: { forward: number; backward: number; update: number; step: number };
  /** Per profiled step. */
  kernels: KernelFigure[];
}

const NUM_CLASSES = 1000;

/** Adds the wall time of the engine's named scopes ('forward', 'backward') to `totals`. */
function timeScopes(totals: Record<string, number>): () => void {
  const engine = tf.engine() as unknown as { startScope(name?: string): void; endScope(result?: unknown): void; state: { activeScope: { name: string } | null } };
  const { startScope, endScope } = engine;
  const started: number[] = [];
  engine.startScope = function (name?: string) {
    started.push(performance.now());
    startScope.call(this, name);
  };
  engine.endScope = function (result?: unknown) {
    const name = engine.state.activeScope?.name ?? '';
    endScope.call(this, result);
    const elapsed = performance.now() - started.pop()!;
    if (name in totals) totals[name]! += elapsed;
  };
  return () => Object.assign(engine, { startScope, endScope });
}

async function run(config: ProfileConfig): Promise<ProfileReport> {
  const selected = await selectBackend(config.backend, 0);
  const loaded = selected.attempts.at(-1)!.reason;
  const model = buildInceptionV3({ imageSize: config.size, numClasses: NUM_CLASSES, auxLogits: false, seed: config.seed });
  const input = new SyntheticInput({ split: 'train', batchSize: config.batch, imageSize: config.size, rank: 0, size: 1, seed: config.seed, numClasses: NUM_CLASSES });
  const first = await input.epoch().next();
  if (first.done) throw new Error('the synthetic input gave no batch');
  const batch = first.value;
  const optimizer = tf.train.rmsprop(defaultLearningRate('rmsprop', config.batch), 0.9, 0.9, 1.0);
  const lossOptions = { numClasses: NUM_CLASSES, labelSmoothing: 0.1, auxLossWeight: 0.4 };
  const lastVariable = trainableVariables(model).at(-1)!;
  const timer = new KernelTimer(tf.getBackend());
  const phases = { forward: 0, backward: 0, update: 0, step: 0 };

  const step = (profiled: boolean): number => {
    const started = performance.now();
    timer.phase = 'other';
    const { loss, gradients } = computeGradients(model, batch, lossOptions);
    const updateStarted = performance.now();
    timer.phase = 'update';
    applyGradients(optimizer, gradients);
    lastVariable.dataSync();
    const ended = performance.now();
    if (profiled) {
      phases.update += ended - updateStarted;
      phases.step += ended - started;
    }
    if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss}: the step computed garbage`);
    process.stderr.write(`profile-step-worker size=${config.size}: ${profiled ? 'profiled' : 'plain'} step ${(ended - started).toFixed(1)} ms loss=${loss.toFixed(4)}\n`);
    return ended - started;
  };

  for (let i = 0; i < config.warmup; i++) step(false);
  const stepMs: number[] = [];
  for (let i = 0; i < config.steps; i++) stepMs.push(step(false));
  // Installed after the warm-up: kernels registered on first use (batch norm's) are wrapped too.
  timer.install();
  const scopes = { forward: 0, backward: 0 };
  const untimeScopes = timeScopes(scopes);
  for (let i = 0; i < config.profiledSteps; i++) step(true);
  untimeScopes();
  timer.uninstall();

  const per = (ms: number): number => ms / Math.max(config.profiledSteps, 1);
  const kernels = timer.results().map((figure) => ({ ...figure, calls: figure.calls / config.profiledSteps, selfMs: per(figure.selfMs), flops: per(figure.flops) }));
  model.dispose();
  optimizer.dispose();
  await input.close();
  return {
    backend: config.backend, batch: config.batch, size: config.size, loaded, stepMs,
    phaseMs: { forward: per(scopes.forward), backward: per(scopes.backward), update: per(phases.update), step: per(phases.step) },
    kernels,
  };
}

try {
  const config = JSON.parse(process.argv[2] ?? '') as ProfileConfig;
  process.stdout.write(`${JSON.stringify(await run(config))}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`profile-step-worker FAILED: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
