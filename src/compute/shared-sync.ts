// What a rank's compute threads share while they work on one batch: a barrier, batch norm's
// per-channel sums, and the sum of their gradients, all in SharedArrayBuffers and waited on with
// Atomics (worker threads block in Atomics.wait; no message round trip per layer). The sums are
// taken in thread order on every thread, so every thread gets bitwise the same totals.
import { pieceOf } from '../optim/updater.js';

/** A compute thread stopped because another failed; the other's error is the one to report. */
export class ReplicaAbortedError extends Error {
  override readonly name = 'ReplicaAbortedError';
}

const ARRIVED = 0;
const GENERATION = 1;
const ABORTED = 2;
/** How often a waiting thread looks at the abort flag even without a wake-up. */
const WAIT_SLICE_MS = 1000;

export function newBarrierBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
}

/** A reusable barrier for `parties` threads; abort() releases every waiter with ReplicaAbortedError. */
export class ThreadBarrier {
  private readonly state: Int32Array;

  constructor(buffer: SharedArrayBuffer, private readonly parties: number) {
    this.state = new Int32Array(buffer);
  }

  wait(): void {
    const generation = Atomics.load(this.state, GENERATION);
    this.throwIfAborted();
    if (Atomics.add(this.state, ARRIVED, 1) === this.parties - 1) {
      Atomics.store(this.state, ARRIVED, 0);
      Atomics.add(this.state, GENERATION, 1);
      Atomics.notify(this.state, GENERATION);
      return;
    }
    while (Atomics.load(this.state, GENERATION) === generation) {
      this.throwIfAborted();
      Atomics.wait(this.state, GENERATION, generation, WAIT_SLICE_MS);
    }
    this.throwIfAborted();
  }

  abort(): void {
    Atomics.store(this.state, ABORTED, 1);
    Atomics.add(this.state, GENERATION, 1);
    Atomics.notify(this.state, GENERATION);
  }

  get aborted(): boolean {
    return Atomics.load(this.state, ABORTED) === 1;
  }

  private throwIfAborted(): void {
    if (this.aborted) throw new ReplicaAbortedError('another compute thread failed');
  }
}

/** Bytes for sums of up to `maxValues` float64 values a call from each of `parties` threads. */
export function batchSumsBytes(parties: number, maxValues: number): number {
  // Two rounds in turn: a thread can be at most one call ahead of the slowest (the barrier holds it).
  return 2 * parties * (maxValues + 1) * Float64Array.BYTES_PER_ELEMENT;
}

/**
 * Thread `index`'s side of the all-thread sum of batch norm's per-channel partial sums; its
 * reduce() is a fused-kernels BatchSumReducer.
 */
export class SharedBatchSums {
  private readonly rounds: Float64Array[][];
  private calls = 0;

  constructor(buffer: SharedArrayBuffer, private readonly barrier: ThreadBarrier, private readonly parties: number,
    private readonly index: number, private readonly maxValues: number) {
    const stride = maxValues + 1;
    this.rounds = [0, 1].map((round) => Array.from({ length: parties },
      (_, thread) => new Float64Array(buffer, ((round * parties + thread) * stride) * Float64Array.BYTES_PER_ELEMENT, stride)));
  }

  readonly reduce = (parts: Float64Array[], count: number): number => {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    if (length > this.maxValues) throw new Error(`batch norm sums of ${length} values exceed the ${this.maxValues} the threads share`);
    const slots = this.rounds[this.calls++ & 1]!;
    const mine = slots[this.index]!;
    let offset = 0;
    for (const part of parts) {
      mine.set(part, offset);
      offset += part.length;
    }
    mine[this.maxValues] = count;
    this.barrier.wait();
    let total = 0;
    for (let thread = 0; thread < this.parties; thread++) total += slots[thread]![this.maxValues]!;
    offset = 0;
    for (const part of parts) {
      for (let i = 0; i < part.length; i++) {
        let sum = 0;
        for (let thread = 0; thread < this.parties; thread++) sum += slots[thread]![offset + i]!;
        part[i] = sum;
      }
      offset += part.length;
    }
    return total;
  };
}

/**
 * out[i] += slot[i] for every other thread's slot, over thread `index`'s piece of [0, length):
 * the threads together add every slot into out (thread 0's own slot), in thread order.
 */
export function addSlotsInto(out: Float32Array, slots: readonly Float32Array[], length: number, index: number, parties: number): void {
  const { start, end } = pieceOf(length, index, parties);
  for (const slot of slots) {
    for (let i = start; i < end; i++) out[i] = out[i]! + slot[i]!;
  }
}
