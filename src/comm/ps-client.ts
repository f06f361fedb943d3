// The worker's side of the parameter-server strategy: each step it pushes every server its shard
// of the gradients (and moving averages), then pulls the shard's new values. The first worker
// configures the servers and seeds them with its parameters (and a checkpoint's optimizer state);
// finish() tells them to stop and waits until each has acknowledged.
import { assertFiniteStep } from '../optim/guard.js';
import { decayRunsOf } from '../optim/regularize.js';
import { newOptimizerState, slotNames, type OptimizerState } from '../optim/types.js';
import type { Link } from './group.js';
import { gatherShard, type Placement, runsInShard, shardRuns, shardsOf, type Shard } from './placement.js';
import {
  asFloat32, asFloat64, CONTROL_STEP, CONTROL_STOP, encodeControl, pieceCount, PsOp, sendArray, type ServerConfig,
} from './ps-protocol.js';
import type { ExchangeConfig, GradientExchange, StepInput, StepOutput } from './types.js';

export interface PsExchangeOptions {
  link: Link;
  /** Transport ranks of the servers and of the workers, in order. */
  servers: readonly number[];
  workers: readonly number[];
  config: ExchangeConfig;
  placement: Placement;
  /** Largest message, in float32 values: 4 MiB by default. */
  pieceElements?: number;
  /** Called for each server once it has acknowledged the stop: its exit is then no death. */
  markDeparted?: (rank: number) => void;
}

export class PsExchange implements GradientExchange {
  readonly strategy = 'ps' as const;
  readonly workers: number;
  readonly workerIndex: number;
  readonly shards: Shard[];
  private readonly buffers: Float32Array[];
  private readonly pieceElements: number;
  private seq = 0;
  private finished = false;

  constructor(private readonly options: PsExchangeOptions) {
    this.workers = options.workers.length;
    this.workerIndex = options.workers.indexOf(options.link.rank);
    if (this.workerIndex < 0) throw new Error(`rank ${options.link.rank} is not a worker`);
    const { variableLengths, trainableLength } = options.config;
    this.shards = shardsOf(variableLengths, trainableLength, options.servers.length, options.placement);
    this.buffers = this.shards.map((shard) => new Float32Array(shard.length));
    this.pieceElements = options.pieceElements ?? 2 ** 20;
  }

  async start(params: Float32Array, state?: OptimizerState): Promise<void> {
    const { link, servers, workers, config } = this.options;
    if (this.workerIndex === 0) {
      const decayRuns = decayRunsOf(config.variableLengths, config.decayed);
      await Promise.all(servers.map(async (server, s) => {
        const shard = this.shards[s]!;
        const serverConfig: ServerConfig = {
          shardLength: shard.length, trainableLength: shard.trainableLength, optimizer: config.optimizer, decayRuns: runsInShard(shard, decayRuns),
          clipNorm: config.clipNorm, statsLength: config.statsLength, pieceElements: this.pieceElements, servers: [...servers], workers: [...workers],
          withState: state !== undefined,
        };
        await link.send(server, { op: PsOp.CONFIG, step: 0, piece: 0 }, Buffer.from(JSON.stringify(serverConfig)));
        gatherShard(params, shard, this.buffers[s]!);
        await sendArray(link, server, PsOp.INIT_PARAMS, 0, this.buffers[s]!, this.pieceElements);
        if (state) {
          for (const [i, slot] of slotNames(config.optimizer.name).entries()) {
            const part = new Float32Array(shard.trainableLength);
            gatherShard(state[slot]!, shard, part);
            await sendArray(link, server, PsOp.INIT_STATE + i, 0, part, this.pieceElements);
          }
        }
      }));
    }
    await this.pull(params, PsOp.INIT_PULL, 0);
  }

  async step(params: Float32Array, input: StepInput): Promise<StepOutput> {
    const { link, servers } = this.options;
    const seq = ++this.seq;
    const captureState = input.captureState === true && this.workerIndex === 0;
    const control = encodeControl({ kind: CONTROL_STEP, step: input.step, learningRate: input.learningRate, captureState, stats: Float64Array.from(input.stats) });
    await Promise.all(servers.map((server, s) => Promise.all([
      link.send(server, { op: PsOp.CONTROL, step: seq, piece: 0 }, control),
      ...this.pushPieces(server, s, input.local, seq),
    ])));
    // The pulls wait from now on, so that no piece sits in the mailbox; a step that was not applied sends none.
    const pulling = Promise.all([this.pull(params, PsOp.PULL, seq), captureState ? this.pullState(seq) : undefined]);
    pulling.catch(() => {});
    const reply = asFloat64(await link.receive(servers[0]!, { op: PsOp.REPLY, step: seq, piece: 0 }));
    assertFiniteStep(input.step, reply[0]!, reply[1]!);
    const [, optimizerState] = await pulling;
    return { gradNorm: reply[0]!, stats: Float32Array.from(reply.subarray(1)), optimizerState };
  }

  async finish(): Promise<void> {
    // Once: the servers are gone after their acknowledgement (a failed run may call it again).
    if (this.finished) return;
    this.finished = true;
    const { link, servers } = this.options;
    const seq = ++this.seq;
    const stop = encodeControl({ kind: CONTROL_STOP, step: 0, learningRate: 0, captureState: false, stats: new Float64Array(this.options.config.statsLength) });
    await Promise.all(servers.map((server) => link.send(server, { op: PsOp.CONTROL, step: seq, piece: 0 }, stop)));
    await Promise.all(servers.map(async (server) => {
      await link.receive(server, { op: PsOp.ACK, step: seq, piece: 0 });
      this.options.markDeparted?.(server);
    }));
  }

  /**
   * Sends server s its shard of `local`, piece by piece: a piece that is one run of the flat
   * vector goes out as it is, without a copy (local is not written again before the server has
   * read it: the next step comes after this one's pull); others are gathered first.
   */
  private pushPieces(server: number, s: number, local: Float32Array, seq: number): Promise<void>[] {
    const shard = this.shards[s]!;
    const buffer = this.buffers[s]!;
    const sends: Promise<void>[] = [];
    for (let piece = 0; piece < pieceCount(shard.length, this.pieceElements); piece++) {
      const from = piece * this.pieceElements;
      const runs = shardRuns(shard, from, Math.min(from + this.pieceElements, shard.length));
      let view: Float32Array;
      if (runs.length === 1) {
        view = local.subarray(runs[0]!.flat, runs[0]!.flat + runs[0]!.length);
      } else {
        for (const run of runs) buffer.set(local.subarray(run.flat, run.flat + run.length), run.at);
        view = buffer.subarray(from, from + runs.reduce((sum, run) => sum + run.length, 0));
      }
      sends.push(this.options.link.send(server, { op: PsOp.PUSH, step: seq, piece }, new Uint8Array(view.buffer, view.byteOffset, view.byteLength)));
    }
    return sends;
  }

  /**
   * target <- every server's shard (or, with `trainableOnly`, its trainable part: optimizer state,
   * as long as the trainable part), each piece put in its places as it arrives.
   */
  private async pull(target: Float32Array, op: number, seq: number, trainableOnly = false): Promise<void> {
    const { link, servers } = this.options;
    await Promise.all(servers.map((server, s) => {
      const shard = this.shards[s]!;
      const length = trainableOnly ? shard.trainableLength : shard.length;
      return Promise.all(Array.from({ length: pieceCount(length, this.pieceElements) }, async (_, piece) => {
        const from = piece * this.pieceElements;
        const to = Math.min(from + this.pieceElements, length);
        const values = asFloat32(await link.receive(server, { op, step: seq, piece }), to - from);
        for (const run of shardRuns(shard, from, to)) target.set(values.subarray(run.at - from, run.at - from + run.length), run.flat);
      }));
    }));
  }

  private async pullState(seq: number): Promise<OptimizerState> {
    const { trainableLength, optimizer } = this.options.config;
    const state = newOptimizerState(optimizer.name, trainableLength);
    await Promise.all(slotNames(optimizer.name).map((slot, i) => this.pull(state[slot]!, PsOp.STATE + i, seq, true)));
    return state;
  }
}
