// The gradient exchange: what one synchronous step of data parallelism needs from the network,
// behind one interface with two strategies. Both work on the flat parameter vector
// (train/parameters.ts): its trainable part [0, trainableLength) and the non-trainable rest
// (batch norm's moving averages, averaged over the workers rather than trained).
//   allreduce  every worker averages with a ring allreduce and applies the update itself;
//   ps         K parameter servers each hold a shard of the variables, average the workers'
//              gradients, apply the update and serve the new values.
// Either way, after step() every worker holds the same parameters, bit for bit, and a step whose
// averaged loss or gradient norm is not finite is applied nowhere: every worker and server throws
// the same NumericalError (src/optim/guard.ts).
import type { OptimizerConfig, OptimizerState } from '../optim/types.js';

export const STRATEGIES = ['allreduce', 'ps'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface ExchangeConfig {
  trainableLength: number;
  totalLength: number;
  /** Each variable's length, in layout order (the parameter servers place whole variables). */
  variableLengths: readonly number[];
  /** Per variable, in layout order: whether weight decay applies to it (convolution and dense kernels). */
  decayed: readonly boolean[];
  optimizer: OptimizerConfig;
  /** Clip the averaged gradients (with their L2 term) to this global norm; 0: no clipping. */
  clipNorm: number;
  /** Length of the per-step figures every worker contributes (StepInput.stats). */
  statsLength: number;
}

export interface StepInput {
  /** 0-based; every worker gives the same. */
  step: number;
  learningRate: number;
  /** This worker's gradients (trainable part) and moving averages (the rest); overwritten. */
  local: Float32Array;
  /**
   * Figures averaged over the workers alongside the gradients: the loss first (a non-finite mean
   * stops the step), then e.g. each rank's step time in its own slot.
   */
  stats: Float32Array;
  /** Return the optimizer's state after this step (for a checkpoint; on the first worker). */
  captureState?: boolean;
}

export interface StepOutput {
  /** Global norm of the averaged gradients, before clipping. */
  gradNorm: number;
  /** The mean over the workers of StepInput.stats. */
  stats: Float32Array;
  /** A copy, when captureState was asked. */
  optimizerState?: OptimizerState;
}

export interface GradientExchange {
  readonly strategy: Strategy;
  /** Workers only: parameter servers run their own loop. */
  readonly workers: number;
  readonly workerIndex: number;
  /** params <- the first worker's params (and optimizer state, e.g. from a checkpoint: all zero without). */
  start(params: Float32Array, state?: OptimizerState): Promise<void>;
  /** One synchronous update of params. */
  step(params: Float32Array, input: StepInput): Promise<StepOutput>;
  /** After the last step, on every worker: parameter servers are told to stop and exit. Once; a second call does nothing. */
  finish(): Promise<void>;
}
