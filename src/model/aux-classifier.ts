// The auxiliary classifier of the paper (section 4 and fig. 8), as torchvision's InceptionAux
// defines it; Keras's InceptionV3 has none. It reads mixed7 (17x17x768 at 299x299):
//
//   aux_average_pooling2d_1   5x5 average pool, stride 3, valid        -> 5x5x768
//   aux_conv2d_1 + aux_batch_normalization_1 (with its ReLU)
//                             1x1 conv, 128 filters                    -> 5x5x128
//   aux_conv2d_2 + aux_batch_normalization_2 (with its ReLU)
//                             5x5 conv, 768 filters, valid             -> 1x1x768
//   aux_global_pool           global average pool (torchvision's adaptive_avg_pool2d) -> 768
//   aux_logits                dense, numClasses (logits)               -> numClasses
//
// The convolutions are conv2d_bn blocks like the rest of the model (no bias, batch norm without
// scale). For inputs below 299 the 17x17 map shrinks (3x3 at 75x75): a pool or convolution whose
// window no longer fits pads "same" instead of "valid", so the head builds at every size >= 75
// and its parameter count never depends on the input size:
//   1x1 conv 98,304 + BN 384 + 5x5 conv 2,457,600 + BN 2,304 + dense 769*numClasses
//   = 2,558,592 + 769*numClasses (3,327,592 for 1000 classes; 1,792 of them non-trainable).
// Like 'predictions' it gives logits, so both outputs take the same softmax cross-entropy; the
// name follows torchvision's `aux_logits`.
import * as tfl from '@tensorflow/tfjs-layers';
import { conv2dBn, LayerNames, type BuildContext, type Tensor } from './blocks.js';
import { seededGlorotUniform } from './seeded-init.js';

const POOL_SIZE = 5;
const POOL_STRIDE = 3;
const CONV_SIZE = 5;

/** The padding that lets a `window`-wide pool or convolution run over a `size`-wide map. */
function paddingFor(size: number, window: number): 'valid' | 'same' {
  return size >= window ? 'valid' : 'same';
}

function spatialSize(x: Tensor): number {
  return x.shape[1] as number;
}

/** The auxiliary head on `mixed7`; its layers are named aux_*, outside the Keras numbering. */
export function auxClassifier(mixed7: Tensor, seed: number, numClasses: number): Tensor {
  const context: BuildContext = { names: new LayerNames('aux_'), seed };
  const poolLayer = tfl.layers.averagePooling2d({
    name: context.names.next('average_pooling2d'),
    poolSize: POOL_SIZE,
    strides: POOL_STRIDE,
    padding: paddingFor(spatialSize(mixed7), POOL_SIZE),
  });
  let x = poolLayer.apply(mixed7) as Tensor;
  x = conv2dBn(x, context, 128, 1, 1);
  x = conv2dBn(x, context, 768, CONV_SIZE, CONV_SIZE, { padding: paddingFor(spatialSize(x), CONV_SIZE) });
  x = tfl.layers.globalAveragePooling2d({ name: 'aux_global_pool' }).apply(x) as Tensor;
  const logits = tfl.layers.dense({
    name: 'aux_logits',
    units: numClasses,
    activation: 'linear',
    kernelInitializer: seededGlorotUniform(seed, 'aux_logits'),
  });
  return logits.apply(x) as Tensor;
}
