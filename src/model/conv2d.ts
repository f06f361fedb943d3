// Keras's Conv2D without bias, computed with tf.conv2d rather than tfjs-layers' fused convolution.
// The fused op's gradient computes the input gradient even where nothing needs it, and for the
// stem's first convolution that is a gradient with respect to the images: 144 ms of a 4.1 s step
// at 139x139 on wasm. tf.conv2d's gradient is evaluated per input, only for inputs the loss
// depends on through trainable weights. Same layer class (Conv2D), weights and output otherwise.
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';

type ConvArgs = Parameters<typeof tfl.layers.conv2d>[0];

/** The fields of tfjs-layers' Conv2D that the call below reads. */
interface ConvState {
  kernel: tfl.LayerVariable;
  strides: [number, number];
  padding: 'same' | 'valid';
  dilationRate: [number, number];
}

// tfjs-layers exports a factory, not the class; its constructor is the one to extend.
const Conv2DLayer = tfl.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as new (args: ConvArgs) => tfl.layers.Layer;

class UnfusedConv2D extends Conv2DLayer {
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      const { kernel, strides, padding, dilationRate } = this as unknown as ConvState;
      return tf.conv2d(x, kernel.read() as tf.Tensor4D, strides, padding, 'NHWC', dilationRate);
    });
  }
}

/** A bias-free, activation-free Conv2D layer (Keras's conv2d_bn convolution). */
export function unfusedConv2d(args: ConvArgs): tfl.layers.Layer {
  if (args.useBias !== false || (args.activation !== undefined && args.activation !== 'linear')) {
    throw new Error('unfusedConv2d is for convolutions without bias or activation');
  }
  return new UnfusedConv2D(args);
}
