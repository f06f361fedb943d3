// Collective operations over the transport, in place on Float32Arrays: the ring allreduce (mean)
// of the gradients and the broadcast of rank 0's initial weights. Every rank must call the same
// collectives in the same order; each call is numbered, and its messages carry the number.
//
// Ring allreduce: the buffer is cut into `size` segments, and each segment into pieces of at most
// `pieceBytes`. Reduce-scatter: segment k starts at the ring's k-th rank and travels the ring, each
// rank adding its own values, until the rank before it holds the sum, divides it by `size` and
// starts it round again (allgather), each rank copying it in. The ring runs in rank order unless
// given another (`ring`: a node's ranks side by side, cluster/ring-order.ts). Every piece travels
// on its own, so sending, receiving, adding and authenticating overlap, and each rank sends
// 2(size-1)/size of the buffer in all.
// The rank that finishes a segment's sum sends the same bytes to all: the averaged gradients are
// bitwise identical on every rank.
import type { Link, ReceiveOptions } from './group.js';
import { addDivideInto, addInto } from './sum-kernels.js';

export interface CollectivesOptions {
  /** Largest message; 4 MiB by default. */
  pieceBytes?: number;
  /**
   * The ranks in their order around the ring; 0..size-1 by default. Only who passes to whom
   * changes: the ranks' numbers, the broadcasts' roots and the results' bitwise agreement do not.
   */
  ring?: readonly number[];
}

const DEFAULT_PIECE_BYTES = 4 * 2 ** 20;

interface Piece {
  /** Numbered across the whole buffer, so that (op, step, piece) names one message. */
  id: number;
  segment: number;
  start: number;
  end: number;
}

export class Collectives {
  private op = 0;
  private readonly pieceElements: number;
  private readonly ring: readonly number[];
  /** Each rank's place in `ring`. */
  private readonly placeOf: readonly number[];

  constructor(private readonly transport: Link, options: CollectivesOptions = {}) {
    this.pieceElements = Math.max(1, Math.floor((options.pieceBytes ?? DEFAULT_PIECE_BYTES) / 4));
    this.ring = options.ring ?? Array.from({ length: transport.size }, (_, r) => r);
    const placeOf = new Array<number>(transport.size).fill(-1);
    this.ring.forEach((rank, place) => {
      if (Number.isInteger(rank) && rank >= 0 && rank < transport.size && placeOf[rank] === -1) placeOf[rank] = place;
    });
    if (this.ring.length !== transport.size || placeOf.includes(-1)) {
      throw new Error(`ring [${this.ring.join(',')}] is not an order of the ${transport.size} ranks 0..${transport.size - 1}`);
    }
    this.placeOf = placeOf;
  }

  get rank(): number {
    return this.transport.rank;
  }

  get size(): number {
    return this.transport.size;
  }

  /** data <- the mean of every rank's data, the same bytes on every rank. */
  async allreduceMean(data: Float32Array): Promise<void> {
    const op = ++this.op;
    const { size } = this;
    if (size === 1) return;
    const { place, next, prev } = this.neighbours();
    const ringDistance = (from: number, to: number) => (to - from + size) % size;
    await Promise.all(this.piecesOf(data.length, size).map(async (piece) => {
      const view = data.subarray(piece.start, piece.end);
      // Reduce-scatter, steps 0..size-2: the piece starts at ring place `segment` and is finished
      // (summed and divided) `hops` = size-1 ranks further on. Each rank adds its values into the
      // buffer it received and sends that buffer on: no buffer is allocated or copied here.
      const hops = ringDistance(piece.segment, place);
      if (hops === 0) {
        // Sent straight from `data`, without a copy: this rank writes into the piece only once
        // the finished piece has come round, which cannot happen before `next` has read all of
        // it. (After a failed allreduce ZeroMQ may still be sending it; the job is ending then.)
        await this.transport.send(next, { op, step: 0, piece: piece.id }, bytesOf(view));
      } else {
        const incoming = asFloats(await this.transport.receive(prev, { op, step: hops - 1, piece: piece.id }), view.length);
        if (hops < size - 1) {
          addInto(incoming, view);
          await this.transport.send(next, { op, step: hops, piece: piece.id }, bytesOf(incoming));
        } else {
          // Allgather, steps size-1..2size-3: the finished piece goes round from here.
          addDivideInto(incoming, view, size, view);
          await this.transport.send(next, { op, step: size - 1, piece: piece.id }, bytesOf(incoming));
          return;
        }
      }
      const round = ringDistance((piece.segment + size - 1) % size, place);
      const finished = await this.transport.receive(prev, { op, step: size - 2 + round, piece: piece.id });
      view.set(asFloats(finished, view.length));
      // Received buffers are never written to once sent: pass it on as it came.
      if (round < size - 1) await this.transport.send(next, { op, step: size - 1 + round, piece: piece.id }, finished);
    }));
  }

  /** Returns once every rank has called it. */
  async barrier(): Promise<void> {
    await this.allreduceMean(new Float32Array(1));
  }

  /**
   * The sum over the ranks of each rank's `values`, exactly: every rank's float64 values reach
   * every rank as they are (a broadcast from each in turn) and are added in rank order, so counts
   * stay integers and every rank gets the same bits. For small arrays (evaluation counts); patient
   * (no --comm-timeout) by default, as the ranks may finish their shares at different times.
   */
  async sumExact(values: Float64Array, options: ReceiveOptions = { patient: true }): Promise<Float64Array> {
    const sum = new Float64Array(values.length);
    for (let root = 0; root < this.size; root++) {
      const copy = root === this.rank ? Float64Array.from(values) : new Float64Array(values.length);
      await this.broadcast(new Float32Array(copy.buffer), root, options);
      for (let i = 0; i < sum.length; i++) sum[i]! += copy[i]!;
    }
    return sum;
  }

  /** data <- root's data on every rank, passed along the ring from the root, piece by piece. */
  async broadcast(data: Float32Array, root = 0, options: ReceiveOptions = {}): Promise<void> {
    const op = ++this.op;
    const { size } = this;
    if (size === 1) return;
    const { place, next, prev } = this.neighbours();
    const hops = (place - this.placeOf[root]! + size) % size;
    await Promise.all(this.piecesOf(data.length, 1).map(async (piece) => {
      const view = data.subarray(piece.start, piece.end);
      if (hops === 0) {
        await this.transport.send(next, { op, step: 0, piece: piece.id }, copyBytes(view));
        return;
      }
      const received = await this.transport.receive(prev, { op, step: hops - 1, piece: piece.id }, options);
      view.set(asFloats(received, view.length));
      if (hops < size - 1) await this.transport.send(next, { op, step: hops, piece: piece.id }, received);
    }));
  }

  /** This rank's place in the ring and the ranks it receives from and sends to. */
  private neighbours(): { place: number; next: number; prev: number } {
    const { size } = this;
    const place = this.placeOf[this.rank]!;
    return { place, next: this.ring[(place + 1) % size]!, prev: this.ring[(place + size - 1) % size]! };
  }

  private piecesOf(length: number, segments: number): Piece[] {
    const pieces: Piece[] = [];
    for (let segment = 0; segment < segments; segment++) {
      const segmentStart = Math.floor((segment * length) / segments);
      const segmentEnd = Math.floor(((segment + 1) * length) / segments);
      for (let start = segmentStart; start < segmentEnd; start += this.pieceElements) {
        pieces.push({ id: pieces.length, segment, start, end: Math.min(start + this.pieceElements, segmentEnd) });
      }
    }
    return pieces;
  }
}

/** A copy: ZeroMQ may still be reading a sent buffer when the collective writes the next values into it. */
function copyBytes(view: Float32Array): Buffer {
  return Buffer.from(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function asFloats(payload: Buffer, length: number): Float32Array {
  if (payload.byteLength !== length * 4) throw new Error(`piece of ${payload.byteLength} bytes, expected ${length * 4}`);
  if (payload.byteOffset % 4 === 0) return new Float32Array(payload.buffer, payload.byteOffset, length);
  return new Float32Array(Uint8Array.prototype.slice.call(payload).buffer);
}

/** The bytes of `values`, without a copy. */
function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}
