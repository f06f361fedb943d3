// Batch normalization without a scale (gamma), followed by a ReLU, as Keras's conv2d_bn uses it.
// tfjs-layers' BatchNormalization cannot train in that configuration: its training branch reads
// gamma unconditionally and throws "Cannot read properties of undefined (reading 'read')". This
// layer does the same computation as Keras's BatchNormalization + Activation('relu'), with the
// same weights in the same order and with the same names (beta, moving_mean, moving_variance), so
// parameter counts and weight files match. The ReLU is part of the layer because on wasm and cpu
// one fused kernel does both in two passes (src/backend/fused-kernels.ts), and keeps only x and y
// for the backward pass.
import * as tfl from '@tensorflow/tfjs-layers';
import { BATCH_NORM_RELU, hasFusedKernels } from '../backend/fused-kernels.js';
import { tf } from '../backend/tf.js';

export interface ScalelessBatchNormArgs {
  name: string;
  /** Keras: 1e-3. */
  epsilon: number;
  /** Keras: 0.99; the moving averages move by (1 - momentum) of the difference each step. */
  momentum: number;
  /** Apply a ReLU to the output (Keras's conv2d_bn: BatchNormalization then Activation('relu')). */
  relu: boolean;
}

type LayerVariable = tfl.LayerVariable;

export class ScalelessBatchNorm extends tfl.layers.Layer {
  static readonly className = 'ScalelessBatchNorm';
  private readonly epsilon: number;
  private readonly momentum: number;
  /** The momentum of the next training step's update: `momentum` once warmed up (see warmUpBatchNorm). */
  private updateMomentum: number;
  private readonly relu: boolean;
  private beta?: LayerVariable;
  private movingMean?: LayerVariable;
  private movingVariance?: LayerVariable;

  constructor(args: ScalelessBatchNormArgs) {
    super({ name: args.name });
    this.epsilon = args.epsilon;
    this.momentum = args.momentum;
    this.updateMomentum = args.momentum;
    this.relu = args.relu;
    this.supportsMasking = true;
  }

  private addBatchNormWeight(name: string, channels: number, initial: 'zeros' | 'ones', trainable: boolean): LayerVariable {
    const initializer = initial === 'zeros' ? tfl.initializers.zeros() : tfl.initializers.ones();
    return this.addWeight(name, [channels], 'float32', initializer, undefined, trainable);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error(`${this.name}: the channel dimension must be known`);
    this.beta = this.addBatchNormWeight('beta', channels, 'zeros', true);
    this.movingMean = this.addBatchNormWeight('moving_mean', channels, 'zeros', false);
    this.movingVariance = this.addBatchNormWeight('moving_variance', channels, 'ones', false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const beta = this.beta!.read();
      if (!kwargs.training) {
        // A constant scale of ones: tfjs's FusedBatchNorm needs one (its gradient saves it).
        const y = tf.batchNorm(x, this.movingMean!.read(), this.movingVariance!.read(), beta, tf.onesLike(beta), this.epsilon);
        return this.relu ? tf.relu(y) : y;
      }
      const { y, mean, variance } = this.relu && hasFusedKernels()
        ? fusedBatchNormRelu(x, beta, this.epsilon)
        : normalizeInTraining(x, beta, this.epsilon, this.relu);
      this.updateMovingAverage(this.movingMean!, mean);
      this.updateMovingAverage(this.movingVariance!, variance);
      // Kept past the forward pass for the updates above; tidy does not free kept tensors.
      tf.dispose([mean, variance]);
      return y;
    });
  }

  private updateMovingAverage(variable: LayerVariable, batchValue: tf.Tensor): void {
    tf.tidy(() => {
      const current = variable.read();
      // A write, not part of the loss: no gradient flows into the moving averages.
      variable.write(tf.sub(current, tf.mul(tf.sub(current, batchValue), 1 - this.updateMomentum)));
    });
  }

  /** The n-th update's momentum (0-based): min(momentum, (1 + n) / (10 + n)). */
  warmUp(updates: number): void {
    this.updateMomentum = Math.min(this.momentum, (1 + updates) / (10 + updates));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum, relu: this.relu };
  }
}

/**
 * y = (x - mean) / sqrt(variance + epsilon) + beta over the batch and spatial axes, with the
 * gradient written out: dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / sqrt(variance + epsilon),
 * dbeta = sum(dy). tfjs's generic batch-norm gradient tiles its statistics to the full input
 * shape and makes about a dozen full-size temporaries; this makes three, and keeps only xhat.
 */
function normalizeInTraining(x: tf.Tensor, beta: tf.Tensor, epsilon: number, relu: boolean): Normalized {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const count = x.size / x.shape[x.rank - 1]!;
  let statistics: { mean: tf.Tensor; variance: tf.Tensor } | undefined;
  const normalize = tf.customGrad((input, offset, save) => {
    const { mean, variance } = tf.moments(input as tf.Tensor, axes);
    const inverseStd = tf.rsqrt(tf.add(variance, epsilon));
    const normalized = tf.mul(tf.sub(input as tf.Tensor, mean), inverseStd);
    (save as tf.GradSaveFunc)([normalized, inverseStd]);
    statistics = { mean: tf.keep(mean), variance: tf.keep(variance) };
    return {
      value: tf.add(normalized, offset as tf.Tensor),
      gradFunc: (dy, saved) => {
        const [xhat, rstd] = saved as [tf.Tensor, tf.Tensor];
        const dyTensor = dy as tf.Tensor;
        const dBeta = tf.sum(dyTensor, axes);
        const dyDotXhat = tf.sum(tf.mul(dyTensor, xhat), axes);
        const centered = tf.sub(dyTensor, tf.div(dBeta, count));
        const dx = tf.mul(tf.sub(centered, tf.mul(xhat, tf.div(dyDotXhat, count))), rstd);
        return [dx, dBeta];
      },
    };
  });
  const y = normalize(x, beta);
  return { y: relu ? tf.relu(y) : y, ...statistics! };
}

interface Normalized {
  y: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

/** The same, with the ReLU, in one kernel (and its gradient in another) on wasm and cpu. */
function fusedBatchNormRelu(x: tf.Tensor, beta: tf.Tensor, epsilon: number): Normalized {
  const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_RELU, { x, beta }, { epsilon }) as unknown as tf.Tensor[];
  return { y: y!, mean: mean!, variance: variance! };
}

tf.serialization.registerClass(ScalelessBatchNorm);

/**
 * Before training step `step` (0-based): every batch norm layer's moving averages move by
 * 1 - min(momentum, (1 + step) / (10 + step)), TensorFlow's num_updates rule (as the weights'
 * moving average, train/ema.ts), rather than by 1 - momentum from the first step. With Keras's
 * momentum 0.99 the averages would otherwise still hold half of their initial 0 and 1 after 70
 * steps, and a short run would be evaluated with statistics its layers never had; from step 890
 * on the rule gives 0.99 itself.
 */
export function warmUpBatchNorm(model: tfl.LayersModel, step: number): void {
  for (const layer of model.layers) if (layer instanceof ScalelessBatchNorm) layer.warmUp(step);
}

export function scalelessBatchNorm(args: ScalelessBatchNormArgs): ScalelessBatchNorm {
  return new ScalelessBatchNorm(args);
}
