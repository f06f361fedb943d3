// The model tests run real tfjs on the pure-JS cpu backend, which every machine has. The backend
// is process-wide in tfjs, so a suite switches to cpu and back to whatever another suite used.
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';

export function useCpuBackend(): void {
  let previous: string | undefined;
  before(async () => {
    previous = tf.engine().backendName ?? undefined;
    await tf.setBackend('cpu');
  });
  after(async () => {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  });
}

/** Bitwise copies of the named layers' kernels (their first weight). */
export function kernelBytes(model: { getLayer(name: string): { getWeights(): tf.Tensor[] } }, layerNames: string[]): Buffer[] {
  return layerNames.map((name) => Buffer.from((model.getLayer(name).getWeights()[0]!.dataSync() as Float32Array).slice().buffer));
}
