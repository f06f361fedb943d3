// One optimizer step on flat float32 vectors, as TensorFlow.js's tf.train optimizers compute it
// (state starts at zero; each value rounded to float32 where tfjs keeps a float32 tensor), with
// the gradients first scaled for clipping. tfjs keeps Adam's beta^t as running float32 products;
// here it is fround(beta) ** (step + 1), the same to within float32 rounding (tests hold both to 1e-6).
import type { OptimizerConfig, OptimizerState } from './types.js';

export interface UpdateArgs {
  learningRate: number;
  /** 0-based index of the step being taken, in the whole run (Adam's bias correction counts from it). */
  step: number;
  /** The clipping factor for the gradients (1: none). */
  scale: number;
}

/**
 * params[i] -= the optimizer's step for gradients[i] * scale, for every i in [start, end) (default:
 * all that `state`'s slots cover). Each value's update depends on its own index alone, so a
 * vector updated in pieces (by several threads) comes out as updated in one.
 */
export function applyUpdate(config: OptimizerConfig, params: Float32Array, gradients: Float32Array, state: OptimizerState, args: UpdateArgs,
  start = 0, end = Object.values(state)[0]?.length ?? 0): void {
  switch (config.name) {
    case 'rmsprop':
      return rmsprop(config, params, gradients, state, args, start, end);
    case 'adam':
    case 'adamw':
      return adam(config, params, gradients, state, args, start, end);
    case 'momentum':
      return momentum(config, params, gradients, state, args, start, end);
  }
}

/** tf.train.rmsprop(lr, decay, momentum, epsilon): epsilon under the square root. */
function rmsprop(config: OptimizerConfig, params: Float32Array, gradients: Float32Array, state: OptimizerState, args: UpdateArgs, start: number, end: number): void {
  const ms = state.ms!;
  const mom = state.mom!;
  const { rho, momentum: mu, epsilon } = config;
  const keep = 1 - rho;
  const { learningRate, scale } = args;
  for (let i = start; i < end; i++) {
    const g = gradients[i]! * scale;
    const meanSquare = Math.fround(rho * ms[i]! + keep * g * g);
    ms[i] = meanSquare;
    const moment = Math.fround(mu * mom[i]! + (learningRate * g) / Math.sqrt(meanSquare + epsilon));
    mom[i] = moment;
    params[i] = params[i]! - moment;
  }
}

/** tf.train.adam(lr, beta1, beta2, epsilon), the bias-corrected moments; adamw's decay is applied before (regularize.ts). */
function adam(config: OptimizerConfig, params: Float32Array, gradients: Float32Array, state: OptimizerState, args: UpdateArgs, start: number, end: number): void {
  const m = state.m!;
  const v = state.v!;
  // As tfjs holds them: the betas and 1 - beta as float32 scalars, beta^t as a product of float32
  // betas. In the bias corrections of the first steps 1 - 0.999 and 1 - fround(0.999) differ by
  // 1e-5 relative, which is tfjs's (and TensorFlow's) step, not PyTorch's float64 one.
  const beta1 = Math.fround(config.beta1);
  const beta2 = Math.fround(config.beta2);
  const keep1 = Math.fround(1 - config.beta1);
  const keep2 = Math.fround(1 - config.beta2);
  const { epsilon } = config;
  const { learningRate, scale } = args;
  const t = args.step + 1;
  const correction1 = 1 - beta1 ** t;
  const correction2 = 1 - beta2 ** t;
  for (let i = start; i < end; i++) {
    const g = gradients[i]! * scale;
    const first = Math.fround(beta1 * m[i]! + keep1 * g);
    const second = Math.fround(beta2 * v[i]! + keep2 * g * g);
    m[i] = first;
    v[i] = second;
    params[i] = params[i]! - (learningRate * (first / correction1)) / (Math.sqrt(second / correction2) + epsilon);
  }
}

/** tf.train.momentum(lr, momentum, useNesterov): accum = momentum * accum + g. */
function momentum(config: OptimizerConfig, params: Float32Array, gradients: Float32Array, state: OptimizerState, args: UpdateArgs, start: number, end: number): void {
  const accum = state.accum!;
  const { momentum: mu, nesterov } = config;
  const { learningRate, scale } = args;
  for (let i = start; i < end; i++) {
    const g = gradients[i]! * scale;
    const accumulated = Math.fround(mu * accum[i]! + g);
    accum[i] = accumulated;
    params[i] = params[i]! - learningRate * (nesterov ? g + mu * accumulated : accumulated);
  }
}
