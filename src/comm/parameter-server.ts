// A parameter server's life: take its shard of the variables from the first worker, serve it to
// every worker, then once per step wait for every worker's gradients, average them (in worker
// order, so every run adds alike), regularize, agree with the other servers on the global norm
// for clipping, apply the optimizer and serve the new values; until every worker says stop. Then
// it acknowledges and returns, and its process exits 0: unlike TensorFlow's servers, which never
// return from join(). A step whose norm or mean loss is not finite is not applied: the first
// server still replies (so the workers learn why), and once the workers have stopped it, every
// server throws the NumericalError.
import { CommError } from '../errors.js';
import { assertFiniteStep } from '../optim/guard.js';
import { clipScale, decayWeights, regularizeGradients, sumOfSquares } from '../optim/regularize.js';
import { newOptimizerState, slotNames, sliceOptimizerState } from '../optim/types.js';
import { applyUpdate } from '../optim/update.js';
import type { Link } from './group.js';
import {
  asFloat32, asFloat64, CONTROL_STOP, decodeControl, encodeFloat64, pieceCount, PsOp, receiveArray, sendArray, sendPiece, type ServerConfig,
} from './ps-protocol.js';
import { addInto } from './sum-kernels.js';

export interface ParameterServerOptions {
  /** The transport: this server's rank is link.rank. */
  link: Link;
  /** Transport rank of the first worker, which configures the servers. */
  firstWorker: number;
  /** Called for every rank once stopping is agreed, so that their exits are not taken for deaths. */
  markDeparted?: (rank: number) => void;
  log?: (line: string) => void;
}

export interface ParameterServerResult {
  steps: number;
  shardLength: number;
}

export async function runParameterServer(options: ParameterServerOptions): Promise<ParameterServerResult> {
  const { link, firstWorker } = options;
  const config = JSON.parse((await link.receive(firstWorker, { op: PsOp.CONFIG, step: 0, piece: 0 })).toString()) as ServerConfig;
  const { workers, servers, pieceElements, trainableLength, shardLength, optimizer, decayRuns } = config;
  const params = new Float32Array(shardLength);
  const slots = slotNames(optimizer.name);
  const state = newOptimizerState(optimizer.name, trainableLength);
  await receiveArray(link, firstWorker, PsOp.INIT_PARAMS, 0, params, pieceElements);
  if (config.withState) {
    for (const [i, slot] of slots.entries()) await receiveArray(link, firstWorker, PsOp.INIT_STATE + i, 0, state[slot]!, pieceElements);
  }
  await Promise.all(workers.map((worker) => sendArray(link, worker, PsOp.INIT_PULL, 0, params, pieceElements)));
  options.log?.(`parameter server: ${shardLength.toLocaleString('en-US')} values (${trainableLength.toLocaleString('en-US')} trained) for ${workers.length} worker(s)`);

  const mean = new Float32Array(shardLength);
  const others = servers.filter((rank) => rank !== link.rank);
  for (let seq = 1; ; seq++) {
    // Patient: between steps the workers may be evaluating or checkpointing for longer than --comm-timeout.
    const controls = (await Promise.all(workers.map((w) => link.receive(w, { op: PsOp.CONTROL, step: seq, piece: 0 }, { patient: true })))).map(decodeControl);
    const stopping = controls.filter((c) => c.kind === CONTROL_STOP).length;
    if (stopping === workers.length) {
      await acknowledgeStop(options, others, workers, seq);
      return { steps: seq - 1, shardLength };
    }
    const { learningRate, step } = controls[0]!;
    if (stopping > 0 || controls.some((c) => c.learningRate !== learningRate || c.step !== step)) {
      throw new CommError(`the workers disagree at step ${seq}: ${stopping > 0 ? `${stopping} of ${workers.length} stopped` : 'different steps or learning rates'}`, {
        rank: link.rank, hint: 'every worker must run the same steps with the same options; this is a bug if they did',
      });
    }
    await sumPieces(link, workers, seq, mean, pieceElements);
    const gradients = mean.subarray(0, trainableLength);
    regularizeGradients(optimizer, gradients, params, decayRuns);
    const norm = Math.sqrt(await globalSum(link, servers, others, seq, sumOfSquares(gradients)));
    const stats = new Float64Array(config.statsLength);
    for (const control of controls) for (let i = 0; i < stats.length; i++) stats[i]! += control.stats[i]! / workers.length;
    // The first server answers with the norm and the figures: a reply from every server would sit unread in the workers' mailboxes.
    const sends: Promise<void>[] = [];
    if (link.rank === servers[0]) sends.push(...workers.map((w) => link.send(w, { op: PsOp.REPLY, step: seq, piece: 0 }, encodeFloat64([norm, ...stats]))));
    if (!Number.isFinite(norm) || !Number.isFinite(stats[0]!)) {
      // Nothing applied. The workers learn it from the reply, save what they must, and stop this
      // server as at a normal end; then it fails with them (not before: a launcher would stop them).
      await Promise.all(sends);
      await Promise.all(workers.map((w) => link.receive(w, { op: PsOp.CONTROL, step: seq + 1, piece: 0 }, { patient: true })));
      await acknowledgeStop(options, others, workers, seq + 1);
      assertFiniteStep(step, norm, stats[0]!);
    }
    decayWeights(optimizer, params, decayRuns, learningRate);
    // Piece by piece, each sent as soon as it is updated, so that the sending overlaps the updating.
    const scale = clipScale(norm, config.clipNorm);
    for (let piece = 0; piece < pieceCount(shardLength, pieceElements); piece++) {
      const start = piece * pieceElements;
      const end = Math.min(start + pieceElements, shardLength);
      const trainedEnd = Math.min(end, trainableLength);
      if (start < trainedEnd) {
        applyUpdate(optimizer, params.subarray(start, trainedEnd), mean.subarray(start, trainedEnd), sliceOptimizerState(state, start, trainedEnd), {
          learningRate, step, scale,
        });
      }
      if (end > trainableLength) params.set(mean.subarray(Math.max(start, trainableLength), end), Math.max(start, trainableLength));
      for (const w of workers) sends.push(sendPiece(link, w, PsOp.PULL, seq, params, piece, pieceElements));
      // Lets the transport hand this piece to ZeroMQ before the next is computed.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(sends);
    if (controls[0]!.captureState) {
      for (const [i, slot] of slots.entries()) await sendArray(link, workers[0]!, PsOp.STATE + i, seq, state[slot]!, pieceElements);
    }
  }
}

/** Every worker has said stop at `seq`: no rank's exit is a death from now on, and each worker gets its ACK. */
async function acknowledgeStop(options: ParameterServerOptions, others: readonly number[], workers: readonly number[], seq: number): Promise<void> {
  for (const rank of [...others, ...workers]) options.markDeparted?.(rank);
  await Promise.all(workers.map((w) => options.link.send(w, { op: PsOp.ACK, step: seq, piece: 0 }, new Uint8Array(0))));
}

/** mean <- the mean of every worker's PUSH, piece by piece, each summed in worker order. */
async function sumPieces(link: Link, workers: readonly number[], seq: number, mean: Float32Array, pieceElements: number): Promise<void> {
  const count = workers.length;
  await Promise.all(Array.from({ length: pieceCount(mean.length, pieceElements) }, async (_, piece) => {
    const view = mean.subarray(piece * pieceElements, (piece + 1) * pieceElements);
    const parts = await Promise.all(workers.map((w) => link.receive(w, { op: PsOp.PUSH, step: seq, piece })));
    view.set(asFloat32(parts[0]!, view.length));
    for (const part of parts.slice(1)) addInto(view, asFloat32(part, view.length));
    // The float32 sum divided by the count, correctly rounded, as the ring allreduce finishes it.
    if (count > 1) for (let i = 0; i < view.length; i++) view[i] = view[i]! / count;
  }));
}

/** The sum over every server of its `value`, added in server order: the same on every server. */
async function globalSum(link: Link, servers: readonly number[], others: readonly number[], seq: number, value: number): Promise<number> {
  await Promise.all(others.map((s) => link.send(s, { op: PsOp.NORM, step: seq, piece: 0 }, encodeFloat64([value]))));
  const values = await Promise.all(servers.map(async (s) => (s === link.rank ? value : asFloat64(await link.receive(s, { op: PsOp.NORM, step: seq, piece: 0 }))[0]!)));
  return values.reduce((sum, v) => sum + v, 0);
}
