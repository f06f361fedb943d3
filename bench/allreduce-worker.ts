// One rank of bench/allreduce: opens the gradient-exchange transport (on 127.0.0.1, or across a
// Slurm step's nodes with RANK srun: exchange-peers.ts), and for each
// size allreduces (mean) a buffer of that many bytes, `warmup` times untimed and `repeats` times
// timed, each after a one-value allreduce that lines the ranks up. Rank 0 prints one JSON line per
// size: {"bytes":B,"ms":[...]}. Usage: node allreduce-worker.js RANK SIZE BASE_PORT SIZES WARMUP REPEATS
import { Collectives } from '../src/comm/collectives.js';
import { deriveCommKey } from '../src/comm/frames.js';
import { Transport } from '../src/comm/transport.js';
import { benchPeers } from './exchange-peers.js';

const [size, basePort] = process.argv.slice(3, 5).map(Number) as [number, number];
const sizes = process.argv[5]!.split(',').map(Number);
const [warmup, repeats] = process.argv.slice(6, 8).map(Number) as [number, number];
const { rank, peers } = benchPeers(process.argv[2]!, size, basePort);
const transport = await Transport.open({ rank, peers, key: deriveCommKey('bench secret', `allreduce-${basePort}`), timeoutMs: 300_000 });
const collectives = new Collectives(transport);
const align = new Float32Array(1);
for (const bytes of sizes) {
  const data = new Float32Array(bytes / 4).fill(rank);
  const times: number[] = [];
  for (let i = 0; i < warmup + repeats; i++) {
    await collectives.allreduceMean(align);
    const start = performance.now();
    await collectives.allreduceMean(data);
    if (i >= warmup) times.push(performance.now() - start);
  }
  if (data[0] !== (size - 1) / 2) throw new Error(`wrong mean ${data[0]}`);
  if (rank === 0) process.stdout.write(`${JSON.stringify({ bytes, ms: times })}\n`);
}
await transport.close();
