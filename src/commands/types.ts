import type { Env } from '../env/types.js';
import type { CommandSpec, OptionValues } from '../options.js';
import type { ProcessIo } from '../join-job.js';
import type { SignalLatch } from '../signals.js';

/** Everything a command may touch of the outside world, handed in by cli.ts. */
export interface CommandContext {
  env: Env;
  io: ProcessIo;
  stdout(text: string): void;
  /** A terminal gets a progress bar rather than a line per step. */
  stdoutIsTerminal?: boolean;
  /** The process's stop signals, kept from its start (cli.ts); absent in a command run in-process by a test. */
  signals?: SignalLatch;
}

export interface Command {
  spec: CommandSpec;
  /** Resolves to the exit status. */
  run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number>;
}
