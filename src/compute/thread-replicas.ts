// The rank computes on N compute threads (compute-worker.ts), TensorFlow's MirroredStrategy
// inside one process: one replica of the model per thread, each on its own wasm instance (tfjs's
// threaded wasm build does not start under Node.js, and XNNPACK's pool would stop at 8 threads),
// each taking a slice of the rank's batch. Batch norm's statistics and their gradients are those
// of the whole batch, and the threads' gradients are added in shared memory, each thread adding
// its share of the vector, so N threads with B/N images each compute what one thread computes
// with B (up to the order of float additions). The exchange with the other ranks then sees one
// contribution per rank: within the node in memory, between the nodes on the ring.
import { Worker } from 'node:worker_threads';
import { ComputeError } from '../errors.js';
import type { Batch } from '../data/types.js';
import type { InceptionV3Args } from '../model/inception-v3.js';
import type { StepMemory } from './memory.js';
import { layoutSignature, type ParameterLayout } from './parameters.js';
import { batchSumsBytes, newBarrierBuffer, ThreadBarrier } from './shared-sync.js';
import type { LossOptions } from './trainer.js';
import type { ComputeReplicas, EvalCounts, StepContribution } from './types.js';
import type { ComputeWorkerData, SharedBuffers, SharedVector, WorkerReply, WorkerRequest } from './worker-protocol.js';
import { localUpdater, type UpdateJob } from '../optim/updater.js';

export interface ThreadReplicasOptions {
  threads: number;
  modelArgs: InceptionV3Args;
  loss: LossOptions;
  /** The largest batch a call brings (the rank's batch size). */
  maxBatch: number;
}

type Ready = Extract<WorkerReply, { type: 'ready' }>;
type Done = Extract<WorkerReply, { type: 'done' }>;

interface Pending {
  replies: (Done | undefined)[];
  errors: Extract<WorkerReply, { type: 'error' }>[];
  resolve(replies: Done[]): void;
  reject(error: Error): void;
}

/** Images per thread: as equal as can be, the first threads taking one more. */
export function splitBatch(batchSize: number, threads: number): { offsets: number[]; sizes: number[] } {
  const sizes = Array.from({ length: threads }, (_, t) => Math.floor(batchSize / threads) + (t < batchSize % threads ? 1 : 0));
  const offsets = sizes.map((_, t) => sizes.slice(0, t).reduce((a, b) => a + b, 0));
  return { offsets, sizes };
}

export class ThreadReplicas implements ComputeReplicas {
  readonly layout: ParameterLayout;
  readonly parameters: number;
  readonly stepMemory: StepMemory;
  private readonly weights: Float32Array;
  private readonly output: Float32Array;
  private readonly images: Float32Array;
  private readonly labels: Int32Array;
  /** What the replicas load before their next request: none, or a vector in shared memory. */
  private reload: SharedVector | undefined;
  private pending: Pending | undefined;
  private failure: Error | undefined;
  private closed = false;

  private constructor(private readonly workers: Worker[], ready: Ready, private readonly shared: SharedBuffers, private readonly maxBatch: number) {
    this.layout = ready.layout;
    this.parameters = ready.parameters;
    this.stepMemory = { fixedBytes: ready.fixedBytes, perImageBytes: ready.perImageBytes };
    this.weights = new Float32Array(shared.weights);
    this.output = new Float32Array(shared.output);
    this.images = new Float32Array(shared.images);
    this.labels = new Int32Array(shared.labels);
  }

  get threads(): number {
    return this.workers.length;
  }

  /** Starts the threads, each building its replica; resolves once all are ready and share their buffers. */
  static async start(options: ThreadReplicasOptions): Promise<ThreadReplicas> {
    const { threads, modelArgs, loss, maxBatch } = options;
    const url = new URL('./compute-worker.js', import.meta.url);
    const workers = Array.from({ length: threads }, (_, index) => new Worker(url, {
      workerData: { index, parties: threads, modelArgs, loss } satisfies ComputeWorkerData,
    }));
    try {
      const readies = await Promise.all(workers.map((worker, index) => firstReply(worker, index)));
      const ready = readies[0]!;
      for (const [index, other] of readies.entries()) {
        if (layoutSignature(other.layout) !== layoutSignature(ready.layout)) throw new ComputeError(`compute thread ${index} built a different model than thread 0`);
      }
      const floats = (count: number) => new SharedArrayBuffer(count * Float32Array.BYTES_PER_ELEMENT);
      const total = ready.layout.totalLength;
      const shared: SharedBuffers = {
        barrier: newBarrierBuffer(), sums: new SharedArrayBuffer(batchSumsBytes(threads, ready.maxSumValues)), maxSumValues: ready.maxSumValues,
        weights: floats(total), output: floats(total), slots: Array.from({ length: threads - 1 }, () => floats(total)),
        images: floats(maxBatch * modelArgs.imageSize * modelArgs.imageSize * 3), labels: new SharedArrayBuffer(maxBatch * Int32Array.BYTES_PER_ELEMENT),
      };
      const replicas = new ThreadReplicas(workers, ready, shared, maxBatch);
      replicas.listen();
      await replicas.request(() => ({ type: 'attach', shared }));
      return replicas;
    } catch (error) {
      await Promise.all(workers.map((worker) => worker.terminate()));
      throw error;
    }
  }

  initialParameters(into: Float32Array): void {
    // Thread 0 put its seeded initial values there when it attached.
    into.set(this.weights);
  }

  allocate(length: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
  }

  /** The threads update a piece of the vector each, when its vectors are in shared memory (allocate()'s); else this thread does. */
  async update(job: UpdateJob): Promise<void> {
    const params = sharedVector(job.params);
    const gradients = sharedVector(job.gradients);
    const state = Object.entries(job.state).map(([slot, vector]) => [slot, sharedVector(vector)] as const);
    if (!params || !gradients || state.some(([, vector]) => !vector)) return localUpdater.update(job);
    await this.request(() => ({
      type: 'update', optimizer: job.optimizer, args: job.args, decayRuns: [...job.decayRuns], params, gradients,
      state: Object.fromEntries(state) as Record<string, SharedVector>,
    }));
  }

  /** The replicas load `from` itself when it is in shared memory (the loop's parameters, allocate()'s); else a copy of it. */
  setParameters(from: Float32Array): void {
    if (!(from.buffer instanceof SharedArrayBuffer)) this.weights.set(from);
    this.reload = sharedVector(from.buffer instanceof SharedArrayBuffer ? from : this.weights);
  }

  async gradients(batch: Batch, step: number): Promise<StepContribution> {
    if (batch.batchSize < this.threads) {
      throw new ComputeError(`a batch of ${batch.batchSize} images cannot be split over ${this.threads} compute threads`,
        { hint: `use --compute-threads ${batch.batchSize} or fewer, or a larger --batch-size` });
    }
    const slice = this.place(batch);
    const replies = await this.request(() => ({ type: 'step', step, total: batch.batchSize, ...slice }));
    // Added in thread order: the same sum on every rank with the same threads.
    let loss = 0;
    let top1 = 0;
    for (const reply of replies) {
      loss += reply.loss!;
      top1 += reply.top1!;
    }
    return { loss, top1, local: this.output };
  }

  async evaluate(batch: Batch): Promise<EvalCounts> {
    const slice = this.place(batch);
    const replies = await this.request(() => ({ type: 'eval', ...slice }));
    const counts: EvalCounts = { images: 0, top1: 0, top5: 0, lossSum: 0 };
    for (const { counts: part } of replies) {
      counts.images += part!.images;
      counts.top1 += part!.top1;
      counts.top5 += part!.top5;
      counts.lossSum += part!.lossSum;
    }
    return counts;
  }

  async digests(): Promise<string[]> {
    const reload = this.takeReload();
    const replies = await this.request(() => ({ type: 'digest', reload }));
    return replies.map((reply) => reply.digest!);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) await this.request(() => ({ type: 'close' })).catch(() => {});
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  /** Copies the batch into the shared buffers; each thread's slice of it. */
  private place(batch: Batch) {
    if (batch.batchSize > this.maxBatch) throw new ComputeError(`a batch of ${batch.batchSize} images is larger than the ${this.maxBatch} the compute threads were started for`);
    this.images.set(batch.images);
    this.labels.set(batch.labels);
    return { ...splitBatch(batch.batchSize, this.threads), imageSize: batch.imageSize, reload: this.takeReload() };
  }

  private takeReload(): SharedVector | undefined {
    const reload = this.reload;
    this.reload = undefined;
    return reload;
  }

  /** Sends every thread the request made for it; resolves with every reply, or rejects with the first thread's own error. */
  private request(make: (index: number) => WorkerRequest): Promise<Done[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('compute threads: a request is already running'));
    return new Promise<Done[]>((resolve, reject) => {
      this.pending = { replies: this.workers.map(() => undefined), errors: [], resolve, reject };
      for (const [index, worker] of this.workers.entries()) worker.postMessage(make(index));
    });
  }

  private listen(): void {
    for (const [index, worker] of this.workers.entries()) {
      worker.on('message', (reply: WorkerReply) => this.settle(index, reply));
      worker.on('error', (error) => this.fail(new ComputeError(`compute thread ${index} failed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new ComputeError(`compute thread ${index} exited (status ${code})`, { hint: 'was the node out of memory? try fewer --compute-threads or a smaller --batch-size' }));
      });
    }
  }

  private settle(index: number, reply: WorkerReply): void {
    const pending = this.pending;
    if (!pending || reply.type === 'ready') return;
    if (reply.type === 'error') pending.errors[index] = reply;
    else pending.replies[index] = reply;
    const answered = pending.replies.filter(Boolean).length + pending.errors.filter(Boolean).length;
    if (answered < this.workers.length) return;
    this.pending = undefined;
    const errors = pending.errors.map((error, thread) => ({ error, thread })).filter(({ error }) => error);
    if (errors.length === 0) {
      pending.resolve(pending.replies as Done[]);
      return;
    }
    // The thread that failed first is the one whose error is not "another thread failed".
    const first = errors.find(({ error }) => !error.aborted) ?? errors[0]!;
    const error = new ComputeError(`compute thread ${first.thread} of ${this.workers.length}: ${first.error.message}`);
    error.stack = first.error.stack ?? error.stack;
    this.failure = error;
    pending.reject(error);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const pending = this.pending;
    this.pending = undefined;
    // A thread that died mid-step leaves the others at a barrier: release them.
    new ThreadBarrier(this.shared.barrier, this.threads).abort();
    pending?.reject(error);
  }
}

/** A view of shared memory as the threads can take it in a message; undefined for an unshared vector. */
function sharedVector(vector: Float32Array): SharedVector | undefined {
  return vector.buffer instanceof SharedArrayBuffer ? { buffer: vector.buffer, byteOffset: vector.byteOffset, length: vector.length } : undefined;
}

/** Resolves with a starting thread's 'ready', or rejects if it fails or exits first. */
function firstReply(worker: Worker, index: number): Promise<Ready> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      if (reply.type !== 'ready') return;
      worker.off('error', onError);
      worker.off('exit', onExit);
      resolve(reply);
    };
    const onError = (error: Error) => reject(new ComputeError(`compute thread ${index} failed to start: ${error.message}`, { cause: error }));
    const onExit = (code: number) => reject(new ComputeError(`compute thread ${index} exited (status ${code}) while starting`));
    worker.once('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}
