// Training recipes: every setting of the optimizer, learning rate, warm-up, schedule, clipping,
// label smoothing and moving average that a run uses, resolved once from `--recipe` and the flags
// that override it, then printed at the start and kept in summary.json. Two recipes:
//
//   default          learns on a small dataset in a short run (a few hundred steps): AdamW with
//                    a short warm-up and cosine decay. Adam's step size does not depend on the
//                    gradients' scale, so the 1,000-3,000 gradient norms of a freshly initialised
//                    Inception-V3 need no clipping to 2.0 that would leave nothing of them.
//   inception-paper  Szegedy et al. 2016, section 8 and TF-slim's train_image_classifier:
//                    RMSProp (decay 0.9, momentum 0.9, epsilon 1.0), 0.045 for a batch of 32 x 50
//                    replicas scaled linearly with the global batch (Goyal et al.), x0.94 every 2
//                    epochs, gradients clipped to global norm 2.0, label smoothing 0.1, L2 4e-5
//                    on the weights (TF-slim's inception_v3_arg_scope), a moving average 0.9999;
//                    plus a 2-epoch warm-up (Goyal et al.) for the scaled rate. Made for a global
//                    batch of 1,600 over 100+ epochs: on a small job it barely moves the weights.
//
// An optimizer's own hyperparameters, its learning-rate rule and its weight decay are those of
// the optimizer, whatever the recipe, so that `--optimizer momentum` under either gets SGD's.
import { OptionsError } from '../errors.js';
import { decouplesWeightDecay, type OptimizerConfig, type OptimizerName } from '../optim/types.js';
import type { Schedule, ScheduleKind } from './schedule.js';

export const RECIPES = ['default', 'inception-paper'] as const;
export type RecipeName = (typeof RECIPES)[number];

/** What a run trains with, every value resolved. */
export interface Recipe {
  name: RecipeName;
  optimizer: OptimizerConfig;
  schedule: Schedule;
  /** How the peak learning rate came about, e.g. "0.001 x sqrt(global batch 16 / 32)". */
  learningRateRule: string;
  clipNorm: number;
  labelSmoothing: number;
  auxLossWeight: number;
  /** 0: no moving average of the weights. */
  emaDecay: number;
}

/** Settings given on the command line (or HPCTRAIN_*); undefined: the recipe's. */
export interface RecipeOverrides {
  optimizer?: OptimizerName;
  learningRate?: number;
  warmupEpochs?: number;
  schedule?: ScheduleKind;
  decayRate?: number;
  decayEpochs?: number;
  clipNorm?: number;
  labelSmoothing?: number;
  auxLossWeight?: number;
  emaDecay?: number;
  rho?: number;
  momentum?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

export interface RunShape {
  globalBatch: number;
  stepsPerEpoch: number;
  totalSteps: number;
}

interface OptimizerDefaults {
  config: Omit<OptimizerConfig, 'name'>;
  learningRate(globalBatch: number): { rate: number; rule: string };
}

/** Adam's and AdamW's: 0.001 for a global batch of 32, scaled by the square root (Adam's step is already normalised). */
const adamRate = (batch: number) => ({ rate: 0.001 * Math.sqrt(batch / 32), rule: `0.001 x sqrt(global batch ${batch} / 32)` });

const BASE = { rho: 0.9, momentum: 0.9, nesterov: false, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

/** Each optimizer's settings when none is given: the paper's RMSProp, Adam's and SGD's usual ones. */
const OPTIMIZER_DEFAULTS: Readonly<Record<OptimizerName, OptimizerDefaults>> = {
  rmsprop: {
    config: { ...BASE, epsilon: 1.0, weightDecay: 4e-5 },
    learningRate: (batch) => ({ rate: (0.045 * batch) / 1600, rule: `0.045 x global batch ${batch} / 1600` }),
  },
  adam: {
    config: { ...BASE, weightDecay: 0 },
    learningRate: adamRate,
  },
  adamw: {
    config: { ...BASE, weightDecay: 0.01 },
    learningRate: adamRate,
  },
  momentum: {
    config: { ...BASE, weightDecay: 4e-5 },
    learningRate: (batch) => ({ rate: (0.1 * batch) / 256, rule: `0.1 x global batch ${batch} / 256` }),
  },
};

interface RecipeDefinition {
  optimizer: OptimizerName;
  /** Warm-up: a share of the run's steps, or epochs. */
  warmup: { fraction: number } | { epochs: number };
  schedule: ScheduleKind;
  decayRate: number;
  decayEpochs: number;
  clipNorm: number;
  labelSmoothing: number;
  auxLossWeight: number;
  emaDecay: number;
}

const RECIPE_DEFINITIONS: Readonly<Record<RecipeName, RecipeDefinition>> = {
  default: {
    optimizer: 'adamw', warmup: { fraction: 0.05 }, schedule: 'cosine', decayRate: 0.94, decayEpochs: 2,
    clipNorm: 0, labelSmoothing: 0.1, auxLossWeight: 0.4, emaDecay: 0,
  },
  'inception-paper': {
    optimizer: 'rmsprop', warmup: { epochs: 2 }, schedule: 'staircase', decayRate: 0.94, decayEpochs: 2,
    clipNorm: 2, labelSmoothing: 0.1, auxLossWeight: 0.4, emaDecay: 0.9999,
  },
};

/** An optimizer with its default settings (the paper's RMSProp, Adam's, SGD's). */
export function defaultOptimizer(name: OptimizerName): OptimizerConfig {
  return { name, ...OPTIMIZER_DEFAULTS[name].config };
}

/** The optimizer's default learning rate for a global batch. */
export function defaultLearningRate(name: OptimizerName, globalBatch: number): number {
  return OPTIMIZER_DEFAULTS[name].learningRate(globalBatch).rate;
}

export function resolveRecipe(name: RecipeName, overrides: RecipeOverrides, run: RunShape): Recipe {
  const definition = RECIPE_DEFINITIONS[name];
  const optimizerName = overrides.optimizer ?? definition.optimizer;
  const defaults = OPTIMIZER_DEFAULTS[optimizerName];
  const optimizer: OptimizerConfig = {
    name: optimizerName,
    rho: overrides.rho ?? defaults.config.rho,
    momentum: overrides.momentum ?? defaults.config.momentum,
    nesterov: overrides.nesterov ?? defaults.config.nesterov,
    beta1: overrides.beta1 ?? defaults.config.beta1,
    beta2: overrides.beta2 ?? defaults.config.beta2,
    epsilon: overrides.epsilon ?? defaults.config.epsilon,
    weightDecay: overrides.weightDecay ?? defaults.config.weightDecay,
  };
  validateOptimizer(optimizer);
  const scaled = defaults.learningRate(run.globalBatch);
  const peakRate = overrides.learningRate ?? scaled.rate;
  const warmupSteps = overrides.warmupEpochs !== undefined
    ? Math.round(overrides.warmupEpochs * run.stepsPerEpoch)
    : 'fraction' in definition.warmup ? Math.ceil(definition.warmup.fraction * run.totalSteps) : Math.round(definition.warmup.epochs * run.stepsPerEpoch);
  return {
    name,
    optimizer,
    schedule: {
      kind: overrides.schedule ?? definition.schedule, peakRate, warmupSteps, totalSteps: run.totalSteps, stepsPerEpoch: run.stepsPerEpoch,
      decayRate: overrides.decayRate ?? definition.decayRate, decayEpochs: overrides.decayEpochs ?? definition.decayEpochs,
    },
    learningRateRule: overrides.learningRate !== undefined ? 'given' : scaled.rule,
    clipNorm: overrides.clipNorm ?? definition.clipNorm,
    labelSmoothing: overrides.labelSmoothing ?? definition.labelSmoothing,
    auxLossWeight: overrides.auxLossWeight ?? definition.auxLossWeight,
    emaDecay: overrides.emaDecay ?? definition.emaDecay,
  };
}

function validateOptimizer(config: OptimizerConfig): void {
  const below1 = (name: string, value: number) => {
    if (!(value >= 0 && value < 1)) throw new OptionsError(`--${name} ${value} is not in [0, 1)`, `${name} is a decay rate: 0.9 or 0.999 are usual`);
  };
  below1('beta1', config.beta1);
  below1('beta2', config.beta2);
  below1('rho', config.rho);
  below1('momentum', config.momentum);
  if (!(config.epsilon > 0)) throw new OptionsError(`--epsilon ${config.epsilon} must be above 0`, 'Adam takes 1e-8, the paper\'s RMSProp 1.0');
  if (config.nesterov && config.name !== 'momentum') throw new OptionsError(`--nesterov applies to --optimizer momentum, not ${config.name}`);
  if (decouplesWeightDecay(config) && config.weightDecay >= 1) {
    throw new OptionsError(`--weight-decay ${config.weightDecay} with adamw would shrink the weights by more than the learning rate each step`, 'AdamW takes 0.01-0.1');
  }
}

/** One line for the log: the effective recipe, value by value. */
export function describeRecipe(recipe: Recipe, decayedVariables: number): string {
  const { optimizer: o, schedule: s } = recipe;
  const hyper = o.name === 'rmsprop' ? `decay ${o.rho}, momentum ${o.momentum}, epsilon ${o.epsilon}`
    : o.name === 'momentum' ? `momentum ${o.momentum}${o.nesterov ? ', Nesterov' : ''}`
    : `beta1 ${o.beta1}, beta2 ${o.beta2}, epsilon ${o.epsilon}`;
  const decay = o.weightDecay > 0
    ? `${decouplesWeightDecay(o) ? 'decoupled weight decay' : 'L2'} ${o.weightDecay} on ${decayedVariables} kernels`
    : 'no weight decay';
  const shape = s.kind === 'cosine' ? `cosine decay to 0 at step ${s.totalSteps}`
    : s.kind === 'staircase' ? `x${s.decayRate} every ${s.decayEpochs} epochs of ${s.stepsPerEpoch} steps` : 'constant';
  return `recipe ${recipe.name}: ${o.name} (${hyper}, ${decay}); learning rate ${formatNumber(s.peakRate)} (${recipe.learningRateRule}), ` +
    `warm-up ${s.warmupSteps} of ${s.totalSteps} steps, then ${shape}; ${recipe.clipNorm > 0 ? `gradients clipped to global norm ${recipe.clipNorm}` : 'no clipping'}; ` +
    `label smoothing ${recipe.labelSmoothing}; ${recipe.emaDecay > 0 ? `moving average ${recipe.emaDecay}` : 'no moving average'}`;
}

function formatNumber(value: number): string {
  return Number(value.toPrecision(4)).toString();
}
