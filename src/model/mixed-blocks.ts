// The inception modules, in the order Keras's inception_v3.py creates their layers (that order
// decides the conv2d_N numbers). Block names follow torchvision's InceptionA..E; the comments
// give the paper's figure and the Keras "mixed" layers each one builds.
import { avgPool3x3, concatChannels, conv2dBn, maxPool3x3Stride2, type BuildContext, type Tensor } from './blocks.js';

/** 35x35 module (paper fig. 5: the 5x5 factorized into two 3x3): mixed0 (poolFeatures 32), mixed1, mixed2 (64). */
export function inceptionA(x: Tensor, context: BuildContext, poolFeatures: number, name: string): Tensor {
  const branch1x1 = conv2dBn(x, context, 64, 1, 1);

  let branch5x5 = conv2dBn(x, context, 48, 1, 1);
  branch5x5 = conv2dBn(branch5x5, context, 64, 5, 5);

  let branch3x3dbl = conv2dBn(x, context, 64, 1, 1);
  branch3x3dbl = conv2dBn(branch3x3dbl, context, 96, 3, 3);
  branch3x3dbl = conv2dBn(branch3x3dbl, context, 96, 3, 3);

  const branchPool = conv2dBn(avgPool3x3(x, context), context, poolFeatures, 1, 1);
  return concatChannels([branch1x1, branch5x5, branch3x3dbl, branchPool], context, name);
}

/** Grid reduction 35x35 -> 17x17 (paper fig. 10): mixed3. */
export function inceptionB(x: Tensor, context: BuildContext, name: string): Tensor {
  const branch3x3 = conv2dBn(x, context, 384, 3, 3, { strides: 2, padding: 'valid' });

  let branch3x3dbl = conv2dBn(x, context, 64, 1, 1);
  branch3x3dbl = conv2dBn(branch3x3dbl, context, 96, 3, 3);
  branch3x3dbl = conv2dBn(branch3x3dbl, context, 96, 3, 3, { strides: 2, padding: 'valid' });

  const branchPool = maxPool3x3Stride2(x, context);
  return concatChannels([branch3x3, branch3x3dbl, branchPool], context, name);
}

/**
 * 17x17 module with the 7x7 factorized into 1x7 and 7x1 (paper fig. 6): mixed4 (channels7x7
 * 128), mixed5, mixed6 (160), mixed7 (192).
 */
export function inceptionC(x: Tensor, context: BuildContext, channels7x7: number, name: string): Tensor {
  const branch1x1 = conv2dBn(x, context, 192, 1, 1);

  let branch7x7 = conv2dBn(x, context, channels7x7, 1, 1);
  branch7x7 = conv2dBn(branch7x7, context, channels7x7, 1, 7);
  branch7x7 = conv2dBn(branch7x7, context, 192, 7, 1);

  let branch7x7dbl = conv2dBn(x, context, channels7x7, 1, 1);
  branch7x7dbl = conv2dBn(branch7x7dbl, context, channels7x7, 7, 1);
  branch7x7dbl = conv2dBn(branch7x7dbl, context, channels7x7, 1, 7);
  branch7x7dbl = conv2dBn(branch7x7dbl, context, channels7x7, 7, 1);
  branch7x7dbl = conv2dBn(branch7x7dbl, context, 192, 1, 7);

  const branchPool = conv2dBn(avgPool3x3(x, context), context, 192, 1, 1);
  return concatChannels([branch1x1, branch7x7, branch7x7dbl, branchPool], context, name);
}

/** Grid reduction 17x17 -> 8x8: mixed8. */
export function inceptionD(x: Tensor, context: BuildContext, name: string): Tensor {
  let branch3x3 = conv2dBn(x, context, 192, 1, 1);
  branch3x3 = conv2dBn(branch3x3, context, 320, 3, 3, { strides: 2, padding: 'valid' });

  let branch7x7x3 = conv2dBn(x, context, 192, 1, 1);
  branch7x7x3 = conv2dBn(branch7x7x3, context, 192, 1, 7);
  branch7x7x3 = conv2dBn(branch7x7x3, context, 192, 7, 1);
  branch7x7x3 = conv2dBn(branch7x7x3, context, 192, 3, 3, { strides: 2, padding: 'valid' });

  const branchPool = maxPool3x3Stride2(x, context);
  return concatChannels([branch3x3, branch7x7x3, branchPool], context, name);
}

/**
 * 8x8 module with expanded filter banks (paper fig. 7): mixed9 and mixed10. Keras names the
 * inner concatenation of the 3x3 branch mixed9_0 / mixed9_1 and leaves the double-3x3 one
 * unnamed (concatenate_1 / concatenate_2).
 */
export function inceptionE(x: Tensor, context: BuildContext, index: number): Tensor {
  const branch1x1 = conv2dBn(x, context, 320, 1, 1);

  const branch3x3 = conv2dBn(x, context, 384, 1, 1);
  const branch3x3Split = concatChannels(
    [conv2dBn(branch3x3, context, 384, 1, 3), conv2dBn(branch3x3, context, 384, 3, 1)],
    context,
    `mixed9_${index}`,
  );

  let branch3x3dbl = conv2dBn(x, context, 448, 1, 1);
  branch3x3dbl = conv2dBn(branch3x3dbl, context, 384, 3, 3);
  const branch3x3dblSplit = concatChannels(
    [conv2dBn(branch3x3dbl, context, 384, 1, 3), conv2dBn(branch3x3dbl, context, 384, 3, 1)],
    context,
  );

  const branchPool = conv2dBn(avgPool3x3(x, context), context, 192, 1, 1);
  return concatChannels([branch1x1, branch3x3Split, branch3x3dblSplit, branchPool], context, `mixed${9 + index}`);
}
