// Inception-V3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
// CVPR 2016), layer for layer as keras/applications/inception_v3.py builds it with include_top:
// for 1000 classes at 299x299, 23,851,784 parameters of which 23,817,352 trainable, 313 layers.
// Optionally with the paper's auxiliary classifier (aux-classifier.ts) as a second output.
import * as tfl from '@tensorflow/tfjs-layers';
import { OptionsError } from '../errors.js';
import { auxClassifier } from './aux-classifier.js';
import { conv2dBn, LayerNames, maxPool3x3Stride2, type BuildContext, type Tensor } from './blocks.js';
import { inceptionA, inceptionB, inceptionC, inceptionD, inceptionE } from './mixed-blocks.js';
import { seededGlorotUniform } from './seeded-init.js';

export interface InceptionV3Args {
  /** Height and width of the square RGB input; at least 75, as in Keras. 299 in the paper. */
  imageSize: number;
  numClasses: number;
  /** Add the auxiliary classifier on mixed7 as a second output, 'aux_logits'. */
  auxLogits: boolean;
  /** Every initializer derives its seed from this one: same seed, bitwise identical weights. */
  seed: number;
}

/** Keras's minimum: below it the valid-padding stem and reductions leave nothing to convolve. */
export const MIN_IMAGE_SIZE = 75;
export const DEFAULT_IMAGE_SIZE = 299;
export const DEFAULT_NUM_CLASSES = 1000;

/** Throws an OptionsError quoting the first value that cannot build a model. */
export function validateInceptionV3Args(args: InceptionV3Args): void {
  const sizeHint = `use --image-size ${DEFAULT_IMAGE_SIZE} (the paper's) or any integer >= ${MIN_IMAGE_SIZE}`;
  if (!Number.isInteger(args.imageSize)) throw new OptionsError(`image size ${args.imageSize} is not a whole number of pixels`, sizeHint);
  if (args.imageSize < MIN_IMAGE_SIZE) {
    throw new OptionsError(`image size ${args.imageSize} is too small for Inception-V3: it needs at least ${MIN_IMAGE_SIZE}x${MIN_IMAGE_SIZE}`, sizeHint);
  }
  if (!Number.isInteger(args.numClasses) || args.numClasses < 1) {
    throw new OptionsError(`number of classes ${args.numClasses} is not a positive integer`, 'use --num-classes 1000 for ImageNet');
  }
  if (!Number.isSafeInteger(args.seed)) {
    throw new OptionsError(`seed ${args.seed} is not an integer`);
  }
}

/** Stem: 299x299x3 -> 35x35x192 (75x75x3 -> 7x7x192). */
function stem(input: Tensor, context: BuildContext): Tensor {
  let x = conv2dBn(input, context, 32, 3, 3, { strides: 2, padding: 'valid' });
  x = conv2dBn(x, context, 32, 3, 3, { padding: 'valid' });
  x = conv2dBn(x, context, 64, 3, 3);
  x = maxPool3x3Stride2(x, context);
  x = conv2dBn(x, context, 80, 1, 1, { padding: 'valid' });
  x = conv2dBn(x, context, 192, 3, 3, { padding: 'valid' });
  return maxPool3x3Stride2(x, context);
}

/** Stem and mixed0..mixed10: 299x299x3 -> 8x8x2048; mixed7 (17x17x768) is where the auxiliary head reads. */
function trunk(input: Tensor, context: BuildContext): { mixed7: Tensor; mixed10: Tensor } {
  let x = stem(input, context);
  x = inceptionA(x, context, 32, 'mixed0'); // 35x35x256
  x = inceptionA(x, context, 64, 'mixed1'); // 35x35x288
  x = inceptionA(x, context, 64, 'mixed2'); // 35x35x288
  x = inceptionB(x, context, 'mixed3'); // 17x17x768
  x = inceptionC(x, context, 128, 'mixed4');
  x = inceptionC(x, context, 160, 'mixed5');
  x = inceptionC(x, context, 160, 'mixed6');
  x = inceptionC(x, context, 192, 'mixed7'); // 17x17x768
  const mixed7 = x;
  x = inceptionD(x, context, 'mixed8'); // 8x8x1280
  x = inceptionE(x, context, 0); // mixed9: 8x8x2048
  x = inceptionE(x, context, 1); // mixed10: 8x8x2048
  return { mixed7, mixed10: x };
}

/** avg_pool and the 'predictions' dense layer. */
function classifier(x: Tensor, args: InceptionV3Args, activation: 'linear' | 'softmax'): Tensor {
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as Tensor;
  return tfl.layers
    .dense({ name: 'predictions', units: args.numClasses, activation, kernelInitializer: seededGlorotUniform(args.seed, 'predictions') })
    .apply(pooled) as Tensor;
}

/**
 * Builds a freshly initialised Inception-V3 on the current tfjs backend. Outputs: 'predictions'
 * (the logits over numClasses: the loss takes a log-softmax of them, see train/loss.ts; an
 * exported model adds the softmax), then 'aux_logits' when auxLogits is set.
 */
export function buildInceptionV3(args: InceptionV3Args): tfl.LayersModel {
  validateInceptionV3Args(args);
  const context: BuildContext = { names: new LayerNames(), seed: args.seed };
  const input = tfl.input({ name: 'input_1', shape: [args.imageSize, args.imageSize, 3] });
  const { mixed7, mixed10 } = trunk(input, context);
  const predictions = classifier(mixed10, args, 'linear');
  const outputs = args.auxLogits ? [predictions, auxClassifier(mixed7, args.seed, args.numClasses)] : predictions;
  return tfl.model({ name: 'inception_v3', inputs: input, outputs });
}

/**
 * The same network for inference elsewhere (hpctrain export): tfjs-layers' own layer classes
 * only, as Keras names them (conv2d_N, batch_normalization_N, activation_N), a softmax on
 * 'predictions' so that it outputs probabilities, and no auxiliary head (auxLogits is ignored).
 * Every weight has the layer and weight name of its counterpart in buildInceptionV3's model.
 */
export function buildInferenceInceptionV3(args: InceptionV3Args): tfl.LayersModel {
  validateInceptionV3Args(args);
  const context: BuildContext = { names: new LayerNames(), seed: args.seed, layers: 'standard' };
  const input = tfl.input({ name: 'input_1', shape: [args.imageSize, args.imageSize, 3] });
  return tfl.model({ name: 'inception_v3', inputs: input, outputs: classifier(trunk(input, context).mixed10, args, 'softmax') });
}
