// Batch normalization without a scale (gamma), as Keras's conv2d_bn uses it. tfjs-layers'
// BatchNormalization cannot train in that configuration: its training branch reads gamma
// unconditionally and throws "Cannot read properties of undefined (reading 'read')". This layer
// does the same computation as Keras's, with the same weights in the same order and with the
// same names (beta, moving_mean, moving_variance), so parameter counts and weight files match.
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';

export interface ScalelessBatchNormArgs {
  name: string;
  /** Keras: 1e-3. */
  epsilon: number;
  /** Keras: 0.99; the moving averages move by (1 - momentum) of the difference each step. */
  momentum: number;
}

type LayerVariable = tfl.LayerVariable;

export class ScalelessBatchNorm extends tfl.layers.Layer {
  static readonly className = 'ScalelessBatchNorm';
  private readonly epsilon: number;
  private readonly momentum: number;
  private beta?: LayerVariable;
  private movingMean?: LayerVariable;
  private movingVariance?: LayerVariable;

  constructor(args: ScalelessBatchNormArgs) {
    super({ name: args.name });
    this.epsilon = args.epsilon;
    this.momentum = args.momentum;
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
      // A constant scale of ones: tfjs's FusedBatchNorm gradient saves its scale input and fails
      // when there is none.
      const scale = tf.onesLike(beta);
      if (!kwargs.training) {
        return tf.batchNorm(x, this.movingMean!.read(), this.movingVariance!.read(), beta, scale, this.epsilon);
      }
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      this.updateMovingAverage(this.movingMean!, mean);
      this.updateMovingAverage(this.movingVariance!, variance);
      return tf.batchNorm(x, mean, variance, beta, scale, this.epsilon);
    });
  }

  private updateMovingAverage(variable: LayerVariable, batchValue: tf.Tensor): void {
    tf.tidy(() => {
      const current = variable.read();
      // A write, not part of the loss: no gradient flows into the moving averages.
      variable.write(tf.sub(current, tf.mul(tf.sub(current, batchValue), 1 - this.momentum)));
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum };
  }
}

tf.serialization.registerClass(ScalelessBatchNorm);

export function scalelessBatchNorm(args: ScalelessBatchNormArgs): ScalelessBatchNorm {
  return new ScalelessBatchNorm(args);
}
