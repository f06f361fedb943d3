// One training step of one rank: batch -> forward -> loss -> gradients -> update. Kept as
// computeGradients + applyGradients so that the data-parallel step can exchange the gradients in
// between.
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';
import type { Batch } from '../data/types.js';
import { crossEntropy, smoothedTargets, top1 } from './loss.js';

export interface LossOptions {
  numClasses: number;
  /** 0.1 in the Inception-V3 recipe. */
  labelSmoothing: number;
  /** Weight of the auxiliary classifier's loss when the model has one (0.4 in the recipe). */
  auxLossWeight: number;
}

export interface StepGradients {
  loss: number;
  top1: number;
  /** By variable name, in the model's trainable-weight order. */
  gradients: tf.NamedTensorMap;
}

export interface StepResult {
  loss: number;
  top1: number;
}

export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

export interface GradientOptions {
  /** The images' shape when not [batch, size, size, 3] (tests' small models). */
  inputShape?: number[];
  /**
   * This batch's share of a larger one (a compute thread's slice of the rank's batch: its images
   * over the rank's): the loss, top-1 and gradients are scaled by it, so that the slices' values
   * add up to those of the whole batch. 1 by default.
   */
  share?: number;
}

/** Forward and backward on one batch, with batch norm in training mode (its moving averages update). */
export function computeGradients(model: tfl.LayersModel, batch: Batch, options: LossOptions, { inputShape, share = 1 }: GradientOptions = {}): StepGradients {
  const variables = trainableVariables(model);
  const scores: number[] = [];
  const { value, grads } = tf.tidy(() => {
    const images = tf.tensor(batch.images, inputShape ?? [batch.batchSize, batch.imageSize, batch.imageSize, 3]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const targets = smoothedTargets(labels, options.numClasses, options.labelSmoothing);
    return tf.variableGrads(() => {
      const outputs = model.apply(images, { training: true }) as tf.Tensor2D | tf.Tensor2D[];
      const [main, aux] = Array.isArray(outputs) ? outputs : [outputs];
      scores.push(top1(main!, labels).dataSync()[0]! * share);
      const loss = crossEntropy(main!, targets);
      const total = aux ? tf.add(loss, tf.mul(crossEntropy(aux, targets), options.auxLossWeight)) as tf.Scalar : loss;
      return share === 1 ? total : tf.mul(total, share) as tf.Scalar;
    }, variables);
  });
  const loss = value.dataSync()[0]!;
  value.dispose();
  return { loss, top1: scores[0]!, gradients: grads };
}

/** Applies gradients with the optimizer and frees them. */
export function applyGradients(optimizer: tf.Optimizer, gradients: tf.NamedTensorMap): void {
  optimizer.applyGradients(gradients);
  tf.dispose(Object.values(gradients));
}

export function trainStep(model: tfl.LayersModel, optimizer: tf.Optimizer, batch: Batch, options: LossOptions): StepResult {
  const { loss, top1: accuracy, gradients } = computeGradients(model, batch, options);
  applyGradients(optimizer, gradients);
  return { loss, top1: accuracy };
}
