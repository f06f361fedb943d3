// Diagnostics go to stderr, prefixed with who speaks, so interleaved output of many ranks
// (srun, aprun, mpirun all merge it) can still be read.
export type Log = (line: string) => void;

export function createLog(write: (text: string) => void, who: string): Log {
  return (line) => write(`hpctrain ${who}: ${line}\n`);
}
