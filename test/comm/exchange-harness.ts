// Both gradient exchanges set up the same way, for the contract suite: on real transports between
// ranks in this process, or as one rank of a job of processes (exchange-worker.ts).
import { Collectives } from '../../src/comm/collectives.js';
import { deriveCommKey } from '../../src/comm/frames.js';
import { subgroup } from '../../src/comm/group.js';
import { runParameterServer, type ParameterServerResult } from '../../src/comm/parameter-server.js';
import type { Placement } from '../../src/comm/placement.js';
import { PsExchange } from '../../src/comm/ps-client.js';
import { AllreduceExchange } from '../../src/comm/ring-allreduce.js';
import { type Peer, Transport } from '../../src/comm/transport.js';
import type { ExchangeConfig, GradientExchange, Strategy } from '../../src/comm/types.js';
import type { OptimizerName } from '../../src/optim/types.js';
import { defaultOptimizer } from '../../src/train/recipe.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

export interface Setup {
  strategy: Strategy;
  workers: number;
  /** Parameter servers (ps only). */
  servers: number;
  placement: Placement;
  optimizer: OptimizerName;
}

export function describeSetup(setup: Setup): string {
  return `${setup.strategy === 'ps' ? `ps: ${setup.servers} server(s) by ${setup.placement}, ${setup.workers} worker(s)` : `allreduce: ${setup.workers} worker(s)`}, ${setup.optimizer}`;
}

/** Variables of awkward sizes, trainable then not, as a model's layout would have them. */
export const VARIABLE_LENGTHS = [300, 7, 1, 2048, 33, 5, 5, 64, 3, 3];
export const TRAINABLE_VARIABLES = 7;
/** Weight decay on some of the trainable variables ("kernels"), on neither side of a variable that is not. */
export const DECAYED = VARIABLE_LENGTHS.map((_, i) => i < TRAINABLE_VARIABLES && i % 3 === 0);
export const TRAINABLE_LENGTH = VARIABLE_LENGTHS.slice(0, TRAINABLE_VARIABLES).reduce((a, b) => a + b, 0);
export const TOTAL_LENGTH = VARIABLE_LENGTHS.reduce((a, b) => a + b, 0);
export const CLIP_NORM = 2;

/** Each optimizer with its defaults, momentum with Nesterov's form, and weight decay large enough to matter. */
export function configFor(optimizer: OptimizerName): ExchangeConfig {
  return {
    variableLengths: VARIABLE_LENGTHS,
    decayed: DECAYED,
    trainableLength: TRAINABLE_LENGTH,
    totalLength: TOTAL_LENGTH,
    optimizer: { ...defaultOptimizer(optimizer), nesterov: optimizer === 'momentum', weightDecay: optimizer === 'adamw' ? 0.5 : 0.05 },
    clipNorm: CLIP_NORM,
    statsLength: 3,
  };
}
/** Small pieces, so that every shard travels in several. */
export const PIECE_ELEMENTS = 100;

/** A worker's contribution at a step: gradients large enough that clipping applies at some steps. */
export function localAt(worker: number, step: number): Float32Array {
  const values = randomFloats(seededRandom(1000 * step + worker + 1), TOTAL_LENGTH);
  const scale = step % 2 === 0 ? 0.2 : 0.01;
  for (let i = 0; i < TRAINABLE_LENGTH; i++) values[i]! *= scale;
  return values;
}

export function statsAt(worker: number, step: number): Float32Array {
  return Float32Array.of(worker, step, worker === 0 ? 10 : 0);
}

/** Rank r's role: servers first, then workers, as the cluster spec numbers them. */
export function peersFor(setup: Setup, basePort: number): Peer[] {
  const size = (setup.strategy === 'ps' ? setup.servers : 0) + setup.workers;
  return Array.from({ length: size }, (_, rank) => ({ rank, host: `node${rank}`, address: '127.0.0.1', port: basePort + rank }));
}

export type Role =
  | { kind: 'worker'; exchange: GradientExchange; transport: Transport; group: Collectives }
  | { kind: 'server'; result: Promise<ParameterServerResult>; transport: Transport };

export async function openRole(setup: Setup, peers: Peer[], rank: number, timeoutMs = 30_000): Promise<Role> {
  const transport = await Transport.open({ rank, peers, key: deriveCommKey('contract', 'exchange'), timeoutMs });
  const servers = setup.strategy === 'ps' ? Array.from({ length: setup.servers }, (_, i) => i) : [];
  const workers = peers.map((p) => p.rank).filter((r) => !servers.includes(r));
  if (servers.includes(rank)) {
    const markDeparted = (peer: number) => transport.markDeparted(peer);
    const result = runParameterServer({ link: transport, firstWorker: workers[0]!, markDeparted });
    // A test that expects it to fail awaits it later.
    result.catch(() => {});
    return { kind: 'server', transport, result };
  }
  const group = new Collectives(subgroup(transport, workers), { pieceBytes: PIECE_ELEMENTS * 4 });
  const exchange = setup.strategy === 'ps'
    ? new PsExchange({
      link: transport, servers, workers, config: configFor(setup.optimizer), placement: setup.placement, pieceElements: PIECE_ELEMENTS,
      markDeparted: (peer) => transport.markDeparted(peer),
    })
    : new AllreduceExchange(group, configFor(setup.optimizer));
  return { kind: 'worker', exchange, transport, group };
}
