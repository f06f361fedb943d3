// The optimizers hpctrain trains with, as plain values: a configuration that travels as JSON (to
// a parameter server) and a state of named float32 slots, each as long as the values it updates.
// Used by the workers (src/comm's ring allreduce strategy: every replica updates itself) and by
// the parameter servers (their shard), so it imports nothing from the stages around it.

export const OPTIMIZERS = ['rmsprop', 'adam', 'adamw', 'momentum'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export interface OptimizerConfig {
  name: OptimizerName;
  /** rmsprop: the decay of the running mean square (TensorFlow's `decay`, PyTorch's `alpha`). */
  rho: number;
  /** rmsprop and momentum: the momentum of the updates. */
  momentum: number;
  /** momentum: Nesterov's accelerated form, as tf.train.momentum(useNesterov). */
  nesterov: boolean;
  /** adam and adamw. */
  beta1: number;
  beta2: number;
  /** rmsprop: added under the square root (TensorFlow's form); adam, adamw: added to it. */
  epsilon: number;
  /**
   * On the decayed variables (convolution and dense kernels): L2 regularisation, wd x value added
   * to the gradient before clipping (TF-slim's weights_regularizer), for rmsprop, adam and
   * momentum; decoupled decay, value x (1 - learning rate x wd) before the update (Loshchilov and
   * Hutter; PyTorch's AdamW), for adamw. 0: none.
   */
  weightDecay: number;
}

/** Named slots, e.g. rmsprop's mean squares and moments; all zero at the start. */
export type OptimizerState = Record<string, Float32Array>;

const SLOTS: Readonly<Record<OptimizerName, readonly string[]>> = {
  rmsprop: ['ms', 'mom'],
  adam: ['m', 'v'],
  adamw: ['m', 'v'],
  momentum: ['accum'],
};

/** The optimizer's slots, in the order they are sent and stored. */
export function slotNames(name: OptimizerName): readonly string[] {
  return SLOTS[name];
}

/** Zeroed slots, from `allocate` when given (e.g. shared memory that compute threads update). */
export function newOptimizerState(name: OptimizerName, length: number, allocate: (n: number) => Float32Array = (n) => new Float32Array(n)): OptimizerState {
  return Object.fromEntries(slotNames(name).map((slot) => [slot, allocate(length)]));
}

/** A copy of every slot (a checkpoint's, while training goes on). */
export function copyOptimizerState(state: OptimizerState): OptimizerState {
  return Object.fromEntries(Object.entries(state).map(([slot, values]) => [slot, values.slice()]));
}

/** Views of [start, end) of every slot: the state of a piece of the values. */
export function sliceOptimizerState(state: OptimizerState, start: number, end: number): OptimizerState {
  return Object.fromEntries(Object.entries(state).map(([slot, values]) => [slot, values.subarray(start, end)]));
}

/** Whether weight decay is decoupled from the gradient (adamw) rather than added to it as L2. */
export function decouplesWeightDecay(config: OptimizerConfig): boolean {
  return config.name === 'adamw';
}
