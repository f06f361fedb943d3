// One rank of a ring for the process tests: allreduces `rounds` buffers of `length` values
// (0: forever), printing each result's digest; on a comm error, prints it and exits 1, as the
// trainer does. Usage: node ring-worker.js RANK SIZE BASE_PORT LENGTH ROUNDS
import { createHash } from 'node:crypto';
import { Collectives } from '../../src/comm/collectives.js';
import { deriveCommKey } from '../../src/comm/frames.js';
import { Transport } from '../../src/comm/transport.js';
import { CommError } from '../../src/errors.js';

const [rank, size, basePort, length, rounds] = process.argv.slice(2).map(Number) as [number, number, number, number, number];
const peers = Array.from({ length: size }, (_, r) => ({ rank: r, host: `node${r}`, address: '127.0.0.1', port: basePort + r }));
const transport = await Transport.open({ rank, peers, key: deriveCommKey('secret', 'ring-test'), timeoutMs: 120_000, log: (line) => process.stderr.write(`${line}\n`) });
const collectives = new Collectives(transport);
try {
  for (let round = 1; rounds === 0 || round <= rounds; round++) {
    const data = new Float32Array(length).map((_, i) => Math.sin(i + rank * 7 + round));
    await collectives.allreduceMean(data);
    process.stdout.write(`round ${round} ${createHash('sha256').update(new Uint8Array(data.buffer)).digest('hex')}\n`);
  }
  await collectives.barrier();
  await transport.close();
} catch (error) {
  process.stderr.write(`${error instanceof CommError ? `error: ${error.message}` : String(error)}\n`);
  process.exit(1);
}
