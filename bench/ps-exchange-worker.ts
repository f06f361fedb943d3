// One rank of bench/allreduce's parameter-server figures: ranks 0..K-1 serve, the others work.
// For each size, the workers exchange a gradient of that many bytes (64 variables, placed by
// size) through PsExchange.step, `warmup` times untimed and `repeats` times timed, each after a
// barrier of the workers: push, the servers' averaging and RMSProp update, and pull. The first
// worker prints one JSON line per size: {"bytes":B,"ms":[...]}.
// Usage: node ps-exchange-worker.js RANK|srun SIZE SERVERS BASE_PORT SIZES WARMUP REPEATS
import { Collectives } from '../src/comm/collectives.js';
import { deriveCommKey } from '../src/comm/frames.js';
import { subgroup } from '../src/comm/group.js';
import { runParameterServer } from '../src/comm/parameter-server.js';
import { PsExchange } from '../src/comm/ps-client.js';
import { Transport } from '../src/comm/transport.js';
import { defaultOptimizer } from '../src/train/recipe.js';
import { benchPeers } from './exchange-peers.js';

const VARIABLES = 64;
const [size, servers, basePort] = process.argv.slice(3, 6).map(Number) as [number, number, number];
const sizes = process.argv[6]!.split(',').map(Number);
const [warmup, repeats] = process.argv.slice(7, 9).map(Number) as [number, number];
const { rank, peers } = benchPeers(process.argv[2]!, size, basePort);
const serverRanks = Array.from({ length: servers }, (_, r) => r);
const workerRanks = peers.map((p) => p.rank).filter((r) => r >= servers);
const transport = await Transport.open({ rank, peers, key: deriveCommKey('bench secret', `ps-${basePort}`), timeoutMs: 300_000 });
// The servers stop after every size: their exits are expected.
const markDeparted = (peer: number) => transport.markDeparted(peer);
if (rank < servers) {
  // One server life per size: the workers stop it after each.
  for (let i = 0; i < sizes.length; i++) await runParameterServer({ link: transport, firstWorker: servers, markDeparted });
} else {
  const group = new Collectives(subgroup(transport, workerRanks));
  for (const bytes of sizes) {
    const length = bytes / 4;
    const variableLengths = Array.from({ length: VARIABLES }, (_, i) => Math.floor(((i + 1) * length) / VARIABLES) - Math.floor((i * length) / VARIABLES));
    const exchange = new PsExchange({
      link: transport, servers: serverRanks, workers: workerRanks, placement: 'size', markDeparted,
      config: { trainableLength: length, totalLength: length, variableLengths, decayed: variableLengths.map(() => false), optimizer: defaultOptimizer('rmsprop'), clipNorm: 0, statsLength: 1 },
    });
    const params = new Float32Array(length);
    await exchange.start(params);
    const local = new Float32Array(length);
    const times: number[] = [];
    for (let i = 0; i < warmup + repeats; i++) {
      local.fill(rank);
      await group.barrier();
      const start = performance.now();
      await exchange.step(params, { step: i, learningRate: 0.01, local, stats: new Float32Array(1) });
      if (i >= warmup) times.push(performance.now() - start);
    }
    await exchange.finish();
    if (rank === servers) process.stdout.write(`${JSON.stringify({ bytes, ms: times })}\n`);
  }
  await group.barrier();
}
await transport.close();
