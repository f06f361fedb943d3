// The bricks of Inception-V3, named as Keras names them so that a layer here maps to one in
// keras/applications/inception_v3.py (and to the layer names of its pretrained weight file).
import * as tfl from '@tensorflow/tfjs-layers';
import { scalelessBatchNorm } from './batch-norm.js';
import { unfusedConv2d } from './conv2d.js';
import { seededGlorotUniform } from './seeded-init.js';

export type Tensor = tfl.SymbolicTensor;

/**
 * Hands out Keras-style layer names in creation order: conv2d_1, conv2d_2, ...,
 * batch_normalization_1, ... (the 1-based numbering of the Keras that wrote the reference weight
 * file; tf.keras and Keras 3 start at "conv2d", then "conv2d_1", one lower). Explicit names keep
 * the numbering independent of tfjs's process-wide counters, so a second build is named alike.
 */
export class LayerNames {
  private readonly counts = new Map<string, number>();

  /** `prefix` marks layers outside the Keras reference, such as "aux_" for the auxiliary head. */
  constructor(private readonly prefix = '') {}

  next(kind: string): string {
    const count = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, count);
    return `${this.prefix}${kind}_${count}`;
  }
}

/**
 * Which layer classes a build uses. 'training' (the default): hpctrain's UnfusedConv2D and
 * ScalelessBatchNorm with its ReLU, which train on wasm and cpu. 'standard': tfjs-layers' own
 * Conv2D, BatchNormalization (scale false) and Activation, as Keras builds conv2d_bn, so that plain
 * TensorFlow.js loads an exported model; for inference only, since tfjs-layers' BatchNormalization
 * cannot train without a scale. Both name their layers and weights alike.
 */
export type LayerSet = 'training' | 'standard';

/** What every block needs besides its input: where names come from, the base seed, the layer classes. */
export interface BuildContext {
  names: LayerNames;
  seed: number;
  layers?: LayerSet;
}

export interface ConvOptions {
  strides?: number;
  padding?: 'same' | 'valid';
}

function applyLayer(layer: tfl.layers.Layer, input: Tensor | Tensor[]): Tensor {
  return layer.apply(input) as Tensor;
}

/**
 * Keras's conv2d_bn: a Conv2D without bias, a BatchNormalization without scale (the ReLU after
 * it makes a scale redundant) and a ReLU. Keras's BatchNormalization defaults (momentum 0.99,
 * epsilon 1e-3) are spelled out because they are part of the reference.
 */
export function conv2dBn(x: Tensor, context: BuildContext, filters: number, rows: number, cols: number, options: ConvOptions = {}): Tensor {
  const convName = context.names.next('conv2d');
  const convArgs = {
    name: convName,
    filters,
    kernelSize: [rows, cols],
    strides: options.strides ?? 1,
    padding: options.padding ?? 'same',
    useBias: false,
    kernelInitializer: seededGlorotUniform(context.seed, convName),
  };
  if (context.layers === 'standard') {
    const conv = tfl.layers.conv2d(convArgs);
    const bn = tfl.layers.batchNormalization({ name: context.names.next('batch_normalization'), scale: false, center: true, momentum: 0.99, epsilon: 1e-3 });
    const relu = tfl.layers.activation({ name: context.names.next('activation'), activation: 'relu' });
    return applyLayer(relu, applyLayer(bn, applyLayer(conv, x)));
  }
  const conv = unfusedConv2d(convArgs);
  // tfjs-layers' own BatchNormalization cannot train without a scale; see batch-norm.ts.
  // The ReLU is fused into it (see batch-norm.ts), so there is no activation_N layer.
  const bn = scalelessBatchNorm({ name: context.names.next('batch_normalization'), momentum: 0.99, epsilon: 1e-3, relu: true });
  return applyLayer(bn, applyLayer(conv, x));
}

/** 3x3 max pooling with stride 2, valid padding: the grid reductions. */
export function maxPool3x3Stride2(x: Tensor, context: BuildContext): Tensor {
  return applyLayer(tfl.layers.maxPooling2d({ name: context.names.next('max_pooling2d'), poolSize: 3, strides: 2, padding: 'valid' }), x);
}

/** 3x3 average pooling with stride 1, same padding: the pooling branch of the inception modules. */
export function avgPool3x3(x: Tensor, context: BuildContext): Tensor {
  return applyLayer(tfl.layers.averagePooling2d({ name: context.names.next('average_pooling2d'), poolSize: 3, strides: 1, padding: 'same' }), x);
}

/** Concatenation along channels; unnamed ones are numbered concatenate_N, as in Keras. */
export function concatChannels(inputs: Tensor[], context: BuildContext, name?: string): Tensor {
  return applyLayer(tfl.layers.concatenate({ name: name ?? context.names.next('concatenate'), axis: 3 }), inputs);
}
