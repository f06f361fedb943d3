// The messages between parameter servers and workers, on the transport. Ops sit far above the
// collectives' call numbers, so both can share a transport; `step` is the exchange's own sequence
// number (0 for the start), `piece` numbers a large array's pieces.
//
//   worker 0 -> server   CONFIG (JSON), INIT_PARAMS, INIT_STATE + slot        once, at start
//   server -> worker     INIT_PULL (the shard's values)                       once, at start
//   worker -> server     CONTROL [kind, step, learning rate, capture state, stats]  every step, then STOP
//                        PUSH (the worker's gradients and moving averages for the shard)
//   server -> server     NORM [the shard's sum of squared averaged gradients]
//   server -> worker     the first server: REPLY [grad norm, mean stats]; then, unless the step
//                        was not finite (every server then stops with the same error), PULL (the
//                        shard's new values)
//   server -> worker 0   STATE + slot (the optimizer's slots, in slotNames order)  when asked
//   server -> worker     ACK                                                  after STOP: it exits
import type { Link } from './group.js';
import type { Run } from '../optim/regularize.js';
import type { OptimizerConfig } from '../optim/types.js';

const BASE = 0x50530000;
export const PsOp = {
  CONFIG: BASE + 1,
  INIT_PARAMS: BASE + 2,
  INIT_PULL: BASE + 5,
  CONTROL: BASE + 6,
  PUSH: BASE + 7,
  NORM: BASE + 8,
  PULL: BASE + 9,
  REPLY: BASE + 10,
  ACK: BASE + 13,
  /** + the slot's index. */
  INIT_STATE: BASE + 0x100,
  /** + the slot's index. */
  STATE: BASE + 0x200,
} as const;

/** What worker 0 tells each server at the start. */
export interface ServerConfig {
  /** The shard's values; the first trainableLength are trained, the rest averaged. */
  shardLength: number;
  trainableLength: number;
  optimizer: OptimizerConfig;
  /** Where weight decay applies, in shard positions. */
  decayRuns: Run[];
  clipNorm: number;
  statsLength: number;
  pieceElements: number;
  /** Transport ranks, in order. */
  servers: number[];
  workers: number[];
  /** INIT_STATE messages follow, one array per slot (a resumed run). */
  withState: boolean;
}

export const CONTROL_STEP = 1;
export const CONTROL_STOP = 0;

export interface Control {
  kind: typeof CONTROL_STEP | typeof CONTROL_STOP;
  /** The step's 0-based index in the whole run (a resumed run's first is not 0). */
  step: number;
  learningRate: number;
  captureState: boolean;
  stats: Float64Array;
}

export function encodeControl(control: Control): Uint8Array {
  const values = new Float64Array(4 + control.stats.length);
  values.set([control.kind, control.step, control.learningRate, control.captureState ? 1 : 0]);
  values.set(control.stats, 4);
  return new Uint8Array(values.buffer);
}

export function decodeControl(payload: Buffer): Control {
  const values = asFloat64(payload);
  const kind = values[0];
  if (kind !== CONTROL_STEP && kind !== CONTROL_STOP) throw new Error(`control message of unknown kind ${kind}`);
  return { kind, step: values[1]!, learningRate: values[2]!, captureState: values[3] === 1, stats: values.slice(4) };
}

export function encodeFloat64(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

export function asFloat64(payload: Buffer): Float64Array {
  if (payload.byteLength % 8 !== 0) throw new Error(`a message of ${payload.byteLength} bytes is not float64 values`);
  return new Float64Array(Uint8Array.prototype.slice.call(payload).buffer);
}

export function pieceCount(length: number, pieceElements: number): number {
  return Math.max(1, Math.ceil(length / pieceElements));
}

/**
 * Sends values in pieces of at most pieceElements, without copying: ZeroMQ reads them after this
 * returns, so they must not change until the receiver has them all. The protocol sees to that:
 * every array is overwritten only after a message that its receiver sends once it has read it
 * whole (a server's pull after every push; a worker's next push after the pull).
 */
export async function sendArray(link: Link, to: number, op: number, step: number, values: Float32Array, pieceElements: number): Promise<void> {
  const sends: Promise<void>[] = [];
  for (let piece = 0; piece < pieceCount(values.length, pieceElements); piece++) sends.push(sendPiece(link, to, op, step, values, piece, pieceElements));
  await Promise.all(sends);
}

/** One piece of sendArray's, on its own (a server sends each piece as soon as it is updated). */
export function sendPiece(link: Link, to: number, op: number, step: number, values: Float32Array, piece: number, pieceElements: number): Promise<void> {
  const view = values.subarray(piece * pieceElements, (piece + 1) * pieceElements);
  return link.send(to, { op, step, piece }, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
}

/** into <- what sendArray sent, piece by piece as they arrive. */
export async function receiveArray(
  link: Link, from: number, op: number, step: number, into: Float32Array, pieceElements: number,
): Promise<void> {
  await Promise.all(Array.from({ length: pieceCount(into.length, pieceElements) }, async (_, piece) => {
    const view = into.subarray(piece * pieceElements, (piece + 1) * pieceElements);
    view.set(asFloat32(await link.receive(from, { op, step, piece }), view.length));
  }));
}

export function asFloat32(payload: Buffer, length: number): Float32Array {
  if (payload.byteLength !== length * 4) throw new Error(`a piece of ${payload.byteLength} bytes, expected ${length * 4}`);
  if (payload.byteOffset % 4 === 0) return new Float32Array(payload.buffer, payload.byteOffset, length);
  return new Float32Array(Uint8Array.prototype.slice.call(payload).buffer);
}

