// The rank's replicas: on this thread (one thread, or a backend with threads of its own:
// tfjs-node's intra-op pool, a GPU), or one per compute thread on wasm. A step that cannot fit in a
// replica's 4 GiB wasm heap is refused here, before the first step.
import type { BackendName } from '../backend/select.js';
import { buildInceptionV3, type InceptionV3Args } from '../model/inception-v3.js';
import { assertStepFits, estimateStepMemory, type StepMemory } from './memory.js';
import { InProcessReplicas } from './model-replica.js';
import { ThreadReplicas } from './thread-replicas.js';
import type { LossOptions } from './trainer.js';
import type { ComputeReplicas } from './types.js';

export interface OpenReplicasOptions {
  backend: BackendName;
  threads: number;
  modelArgs: InceptionV3Args;
  loss: LossOptions;
  /** The rank's batch. */
  batchSize: number;
}

export interface OpenedReplicas {
  replicas: ComputeReplicas;
  /** Parameters of the model. */
  parameters: number;
}

export async function openReplicas(options: OpenReplicasOptions): Promise<OpenedReplicas> {
  const { backend, threads, modelArgs, loss, batchSize } = options;
  const checkMemory = (memory: StepMemory) => {
    if (backend === 'wasm') assertStepFits(memory, batchSize, modelArgs.imageSize, threads);
  };
  if (threads <= 1) {
    const model = buildInceptionV3(modelArgs);
    try {
      checkMemory(estimateStepMemory(model));
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { replicas: new InProcessReplicas(model, loss), parameters: model.countParams() };
  }
  const replicas = await ThreadReplicas.start({ threads, modelArgs, loss, maxBatch: batchSize });
  try {
    // Each thread's heap holds its slice of the batch.
    checkMemory(replicas.stepMemory);
  } catch (error) {
    await replicas.close();
    throw error;
  }
  return { replicas, parameters: replicas.parameters };
}
