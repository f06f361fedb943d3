// Digests of weights, to show that replicas agree bit for bit.
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

/** The flat parameter vector's digest, as every worker prints it at the end. */
export function parametersDigest(params: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest('hex');
}
