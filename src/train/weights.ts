// A digest of a model's weights, every one in order, to show that replicas agree bit for bit.
import { createHash } from 'node:crypto';
import type * as tfl from '@tensorflow/tfjs-layers';

export function weightsDigest(model: tfl.LayersModel): string {
  const hash = createHash('sha256');
  for (const weight of model.weights) {
    const values = weight.read().dataSync() as Float32Array;
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}
