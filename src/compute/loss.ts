// The classification loss: softmax cross-entropy computed from the logits with label smoothing
// (the Inception-V3 paper's "label-smoothing regularization"), and batch top-1. From the logits,
// through a log-softmax, rather than the log of clipped probabilities: a clipped probability has
// no gradient, so a confidently wrong class (probability below the clip) would stop learning, and
// the smoothed targets' mass on it with it.
import { tf } from '../backend/tf.js';

/** One-hot targets with `smoothing` of the mass spread evenly over every class. */
export function smoothedTargets(labels: tf.Tensor1D, numClasses: number, smoothing: number): tf.Tensor2D {
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(labels, numClasses), 'float32') as tf.Tensor2D;
    return smoothing === 0 ? oneHot : tf.add(tf.mul(oneHot, 1 - smoothing), smoothing / numClasses) as tf.Tensor2D;
  });
}

/** Mean over the batch of -sum(targets * log_softmax(logits)). */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar);
}

/** Fraction of the batch whose highest-scoring class is the label (logits or probabilities alike). */
export function top1(scores: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(scores, -1), labels), 'float32')) as tf.Scalar);
}
