// What turns one rank's step into a synchronous data-parallel one: every replica starts from rank
// 0's weights, and every step's gradients are averaged over the ranks before the same update is
// applied everywhere. Batch norm's moving averages (not trained, but updated by each rank's own
// batches) are averaged in the same message, so that every replica holds the same weights, bit
// for bit, after every step.
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend/tf.js';
import type { Collectives } from '../comm/collectives.js';

export class DataParallel {
  private readonly trainable: tfl.LayerVariable[];
  private readonly frozen: tfl.LayerVariable[];
  private readonly buffer: Float32Array;

  constructor(private readonly collectives: Collectives, model: tfl.LayersModel) {
    this.trainable = model.trainableWeights;
    this.frozen = model.nonTrainableWeights;
    const size = [...this.trainable, ...this.frozen].reduce((sum, weight) => sum + weight.read().size, 0);
    this.buffer = new Float32Array(size);
  }

  get size(): number {
    return this.collectives.size;
  }

  /** Every weight, trainable or not, becomes rank 0's. */
  async broadcastWeights(): Promise<void> {
    if (this.size === 1) return;
    const weights = [...this.trainable, ...this.frozen];
    this.pack(weights.map((w) => w.read()));
    await this.collectives.broadcast(this.buffer, 0);
    this.unpackInto(weights);
  }

  /**
   * The gradients (by variable name, in trainable-weight order, as computeGradients gives them),
   * averaged over the ranks; the moving averages are averaged in place. Frees the local gradients.
   */
  async averageGradients(gradients: tf.NamedTensorMap): Promise<tf.NamedTensorMap> {
    if (this.size === 1) return gradients;
    const names = this.trainable.map((w) => (w.read() as tf.Variable).name);
    const locals = names.map((name) => {
      const gradient = gradients[name];
      if (!gradient) throw new Error(`no gradient for ${name}`);
      return gradient;
    });
    this.pack([...locals, ...this.frozen.map((w) => w.read())]);
    tf.dispose(locals);
    await this.collectives.allreduceMean(this.buffer);
    const averaged: tf.NamedTensorMap = {};
    let offset = 0;
    for (const [i, name] of names.entries()) {
      const shape = this.trainable[i]!.shape as number[];
      const length = shape.reduce((a, b) => a * b, 1);
      averaged[name] = tf.tensor(this.buffer.slice(offset, offset + length), shape);
      offset += length;
    }
    this.unpackInto(this.frozen, offset);
    return averaged;
  }

  private pack(tensors: tf.Tensor[]): void {
    let offset = 0;
    for (const tensor of tensors) {
      this.buffer.set(tensor.dataSync() as Float32Array, offset);
      offset += tensor.size;
    }
  }

  private unpackInto(weights: tfl.LayerVariable[], start = 0): void {
    let offset = start;
    for (const weight of weights) {
      const length = weight.read().size;
      const value = tf.tensor(this.buffer.slice(offset, offset + length), weight.shape as number[]);
      weight.write(value);
      value.dispose();
      offset += length;
    }
  }
}
