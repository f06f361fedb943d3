// Ports a job uses on every node: the rendezvous port, then one service port per local rank.
// Deriving them from the job id lets two jobs that share a node (a common sight on clusters that
// pack small jobs) pick different ports without any configuration.
import { createServer } from 'node:net';
import { OptionsError, PortInUseError } from '../errors.js';

/** Ports per job: the rendezvous port and one service port for each of up to 63 ranks per node. */
export const PORT_BLOCK = 64;
const FIRST_PORT = 20000;
/** Blocks end below 32768, where Linux starts handing out ephemeral ports. */
const BLOCKS = Math.floor((32768 - FIRST_PORT) / PORT_BLOCK);

/** A stable port in 20000..32672 for a job id; the block of PORT_BLOCK ports from it is the job's. */
export function portFromJobId(jobId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(jobId)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return FIRST_PORT + (hash % BLOCKS) * PORT_BLOCK;
}

/** The port of the slot-th rank on one machine (parameter server, allreduce ring). */
export function servicePort(basePort: number, slot: number): number {
  if (slot >= PORT_BLOCK - 1) {
    throw new OptionsError(`${slot + 1} ranks on one machine: at most ${PORT_BLOCK - 1} are supported`, 'start fewer processes per machine');
  }
  return basePort + 1 + slot;
}

/** Bind and release, so that a busy port fails now with a clear message rather than mid-job. */
export async function assertPortFree(port: number, host: string, what: string, flag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') return reject(error);
      reject(new PortInUseError(`port ${port} (${what}) is already in use on ${host}`, {
        host, hint: `another job or program holds it; choose another base port with ${flag}`,
      }));
    });
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve()));
  });
}
