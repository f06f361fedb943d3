// A model's variables as one flat float32 vector: the trainable weights in the model's order, then
// the non-trainable ones (batch norm's moving averages). The gradient exchange, the optimizer, the
// moving average of the weights and the checkpoints all work on this vector, with no tensor
// backend needed (a parameter server has none); the model is read from and written to it once per
// step.
import { createHash } from 'node:crypto';
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';

export interface ParameterEntry {
  /** The variable's name, as computeGradients keys its gradient. */
  name: string;
  shape: number[];
  offset: number;
  length: number;
  trainable: boolean;
}

export interface ParameterLayout {
  entries: ParameterEntry[];
  /** The trainable part is [0, trainableLength); the non-trainable part follows it. */
  trainableLength: number;
  totalLength: number;
}

export function parameterLayout(model: tfl.LayersModel): ParameterLayout {
  const entries: ParameterEntry[] = [];
  let offset = 0;
  for (const [weights, trainable] of [[model.trainableWeights, true], [model.nonTrainableWeights, false]] as const) {
    for (const weight of weights) {
      const length = weight.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      entries.push({ name: (weight.read() as tf.Variable).name, shape: weight.shape as number[], offset, length, trainable });
      offset += length;
    }
  }
  const trainableLength = entries.filter((e) => e.trainable).reduce((sum, e) => sum + e.length, 0);
  return { entries, trainableLength, totalLength: offset };
}

/**
 * Per variable: whether weight decay applies to it. Convolution and dense kernels only, as
 * TF-slim's weights_regularizer: not the dense biases, not batch norm's offsets (beta), and not
 * the moving averages, which are not trained.
 */
export function decayedVariables(layout: ParameterLayout): boolean[] {
  return layout.entries.map((entry) => entry.trainable && /(^|\/)kernel$/.test(entry.name));
}

/** Names and lengths in order: two layouts with the same signature hold the same variables. */
export function layoutSignature(layout: ParameterLayout): string {
  return layout.entries.map((e) => `${e.trainable ? '' : '~'}${e.name}:${e.shape.join('x')}`).join(',');
}

/** The signature's sha256, as every checkpoint's meta records it. */
export function layoutDigest(layout: ParameterLayout): string {
  return createHash('sha256').update(layoutSignature(layout)).digest('hex');
}

function modelWeights(model: tfl.LayersModel): tfl.LayerVariable[] {
  return [...model.trainableWeights, ...model.nonTrainableWeights];
}

/** into <- every variable's current value. */
export function readParameters(model: tfl.LayersModel, layout: ParameterLayout, into: Float32Array): void {
  for (const [i, weight] of modelWeights(model).entries()) {
    into.set(weight.read().dataSync() as Float32Array, layout.entries[i]!.offset);
  }
}

/** Every variable <- its part of `from`. */
export function writeParameters(model: tfl.LayersModel, layout: ParameterLayout, from: Float32Array): void {
  // wasm copies a new tensor's values into its heap at once; cpu and tfjs-node would keep a view of
  // `from`, which changes every step, so they get a copy.
  const copy = tf.getBackend() !== 'wasm';
  for (const [i, weight] of modelWeights(model).entries()) {
    const entry = layout.entries[i]!;
    // A new tensor, not a write into the variable's storage: wasm's convolutions keep XNNPACK's
    // packed copy of a filter, made the first time that tensor is used, and would not see it.
    const values = copy ? from.slice(entry.offset, entry.offset + entry.length) : from.subarray(entry.offset, entry.offset + entry.length);
    const value = tf.tensor(values, entry.shape);
    weight.write(value);
    value.dispose();
  }
}

/**
 * into <- this rank's contribution to a step: the gradients (by variable name, as
 * computeGradients gives them) in the trainable part, the moving averages as its batches left them
 * in the rest. Frees the gradients.
 */
export function packStep(gradients: tf.NamedTensorMap, model: tfl.LayersModel, layout: ParameterLayout, into: Float32Array): void {
  try {
    const weights = modelWeights(model);
    for (const [i, entry] of layout.entries.entries()) {
      const source = entry.trainable ? gradients[entry.name] : weights[i]!.read();
      if (!source) throw new Error(`no gradient for ${entry.name}`);
      into.set(source.dataSync() as Float32Array, entry.offset);
    }
  } finally {
    tf.dispose(Object.values(gradients));
  }
}
