// A compute thread: its own tfjs and wasm instance (a worker thread has its own module graph and
// its own wasm memory of up to 4 GiB), its own replica of the model, and a slice of each of the
// rank's batches. Its batch norm sums are the whole batch's (shared-sync.ts); its gradients are
// added to the other threads' in shared memory, each thread adding its share of the vector.
// Requests come from thread-replicas.ts one at a time; each is answered with 'done' or 'error'.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { setBatchSumReducer } from '../backend/fused-kernels.js';
import { selectBackend } from '../backend/select.js';
import { tf } from '../backend/tf.js';
import { buildInceptionV3 } from '../model/inception-v3.js';
import { estimateStepMemory } from './memory.js';
import { ModelReplica } from './model-replica.js';
import { pieceOf, updateRange } from '../optim/updater.js';
import { addSlotsInto, ReplicaAbortedError, SharedBatchSums, ThreadBarrier } from './shared-sync.js';
import type { ComputeWorkerData, SharedBuffers, SharedVector, WorkerReply, WorkerRequest } from './worker-protocol.js';

if (parentPort === null) throw new Error('src/compute/compute-worker.js runs as a compute thread of a rank');
const port: MessagePort = parentPort;
const { index, parties, modelArgs, loss } = workerData as ComputeWorkerData;

await selectBackend('wasm', 0);
const model = buildInceptionV3(modelArgs);
const replica = new ModelReplica(model, loss);
const layout = replica.layout;
const channels = Math.max(0, ...layout.entries.filter((e) => e.name.endsWith('moving_mean')).map((e) => e.length));
const memory = estimateStepMemory(model);
port.postMessage({
  type: 'ready', layout, parameters: model.countParams(), maxSumValues: 2 * channels, fixedBytes: memory.fixedBytes, perImageBytes: memory.perImageBytes,
} satisfies WorkerReply);

interface Attached {
  barrier: ThreadBarrier;
  weights: Float32Array;
  output: Float32Array;
  /** Every slot: this thread's (the output itself for thread 0) and the others'. */
  slots: Float32Array[];
  images: Float32Array;
  labels: Int32Array;
}

let attached: Attached | undefined;

function attach(shared: SharedBuffers): void {
  const barrier = new ThreadBarrier(shared.barrier, parties);
  const sums = new SharedBatchSums(shared.sums, barrier, parties, index, shared.maxSumValues);
  setBatchSumReducer(sums.reduce);
  const output = new Float32Array(shared.output);
  attached = {
    barrier, weights: new Float32Array(shared.weights), output, slots: [output, ...shared.slots.map((slot) => new Float32Array(slot))],
    images: new Float32Array(shared.images), labels: new Int32Array(shared.labels),
  };
  if (index === 0) replica.read(attached.weights);
}

function view(vector: SharedVector): Float32Array {
  return new Float32Array(vector.buffer, vector.byteOffset, vector.length);
}

function sliceOf(request: { offsets: number[]; sizes: number[]; imageSize: number }) {
  const { images, labels } = attached!;
  const offset = request.offsets[index]!;
  const size = request.sizes[index]!;
  const pixels = request.imageSize * request.imageSize * 3;
  return {
    images: images.subarray(offset * pixels, (offset + size) * pixels), labels: labels.subarray(offset, offset + size),
    batchSize: size, imageSize: request.imageSize,
  };
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  if (request.type === 'attach') {
    attach(request.shared);
    return { type: 'done' };
  }
  const shared = attached!;
  if ('reload' in request && request.reload) replica.write(view(request.reload));
  switch (request.type) {
    case 'step': {
      const batch = sliceOf(request);
      const result = replica.gradients(batch, request.step, batch.batchSize / request.total, shared.slots[index]!);
      // Every thread's gradients are in place before any is added.
      shared.barrier.wait();
      addSlotsInto(shared.output, shared.slots.slice(1), layout.trainableLength, index, parties);
      return { type: 'done', loss: result.loss, top1: result.top1 };
    }
    case 'eval': {
      const batch = sliceOf(request);
      const counts = batch.batchSize > 0 ? await replica.evaluate(batch) : { images: 0, top1: 0, top5: 0, lossSum: 0 };
      return { type: 'done', counts };
    }
    case 'digest':
      return { type: 'done', digest: replica.digest() };
    case 'update': {
      const gradients = view(request.gradients);
      const { start, end } = pieceOf(gradients.length, index, parties);
      const state = Object.fromEntries(Object.entries(request.state).map(([slot, vector]) => [slot, view(vector)]));
      updateRange({ optimizer: request.optimizer, params: view(request.params), gradients, state, decayRuns: request.decayRuns, args: request.args }, start, end);
      return { type: 'done' };
    }
    case 'close':
      setBatchSumReducer(undefined);
      model.dispose();
      tf.disposeVariables();
      return { type: 'done' };
  }
}

// One request at a time, in order.
let queue = Promise.resolve();
port.on('message', (request: WorkerRequest) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(request);
    } catch (error) {
      const aborted = error instanceof ReplicaAbortedError;
      // The others would otherwise wait at the next barrier for a thread that is not coming.
      if (!aborted) attached?.barrier.abort();
      reply = { type: 'error', message: (error as Error).message, stack: (error as Error).stack, aborted };
    }
    port.postMessage(reply);
    if (request.type === 'close') port.close();
  });
});
