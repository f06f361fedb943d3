// The classification loss: categorical cross-entropy on the model's softmax outputs with label
// smoothing (the Inception-V3 paper's "label-smoothing regularization"), and batch top-1.
import { tf } from '../backend/tf.js';

/** Keras clips probabilities to [1e-7, 1 - 1e-7] before the log; so do we, to match it. */
const EPSILON = 1e-7;

/** One-hot targets with `smoothing` of the mass spread evenly over every class. */
export function smoothedTargets(labels: tf.Tensor1D, numClasses: number, smoothing: number): tf.Tensor2D {
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(labels, numClasses), 'float32') as tf.Tensor2D;
    return smoothing === 0 ? oneHot : tf.add(tf.mul(oneHot, 1 - smoothing), smoothing / numClasses) as tf.Tensor2D;
  });
}

/** Mean over the batch of -sum(targets * log(probabilities)). */
export function crossEntropy(probabilities: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logs = tf.log(tf.clipByValue(probabilities, EPSILON, 1 - EPSILON));
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logs), -1))) as tf.Scalar;
  });
}

/** Fraction of the batch whose most probable class is the label. */
export function top1(probabilities: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(probabilities, -1), labels), 'float32')) as tf.Scalar);
}
