#!/usr/bin/env node
// The edge of the program: reads argv and process.env once, runs one command, and is the only
// place that exits. A mistake of the user's prints its message and hint, never a stack trace.
import { readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { COMMANDS } from './commands/index.js';
import type { CommandContext } from './commands/types.js';
import { HpcTrainError, OptionsError } from './errors.js';
import { formatHelp, parseCommandArgs } from './options.js';
import { LATCHED_SIGNALS, SignalLatch, signalNumber } from './signals.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function topLevelHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  const lines = [
    'Usage: hpctrain COMMAND [options]',
    '',
    'Train deep-learning models on Slurm, PBS and Cray clusters: one process per node finds the',
    'others through an authenticated ZeroMQ rendezvous and agrees on a cluster spec.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, entry]) => `  ${name.padEnd(width)}${entry.summary}`),
    '',
    'Run `hpctrain COMMAND --help` for the options of each. `hpctrain --version` prints the version.',
  ];
  return lines.join('\n') + '\n';
}

export async function main(argv: readonly string[], context: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    context.stdout(topLevelHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    context.stdout(`${version()}\n`);
    return 0;
  }
  try {
    const entry = COMMANDS[name];
    if (!entry) throw new OptionsError(`unknown command "${name}"`, `commands: ${Object.keys(COMMANDS).join(', ')}; see hpctrain --help`);
    const command = await entry.load();
    const { values, positionals } = parseCommandArgs(command.spec, rest, context.env);
    if (values.help) {
      context.stdout(formatHelp(command.spec));
      return 0;
    }
    return await command.run(values, positionals, context);
  } catch (error) {
    if (!(error instanceof HpcTrainError)) throw error;
    context.io.stderr(`hpctrain ${name}: error: ${error.message}\n`);
    if (error.hint) context.io.stderr(`hpctrain ${name}: hint: ${error.hint}\n`);
    return error.exitCode;
  }
}

// sharp decodes images on libuv's thread pool, which has 4 threads unless told otherwise before
// its first use; give it one per core so that more decode threads than 4 still scale.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, cpus().length));

// Before any command loads: a scheduler's early SIGUSR1 must neither be lost nor open Node's inspector.
const signals = new SignalLatch(process, (signal) => {
  process.stderr.write(`hpctrain: got ${signal}; exiting\n`);
  process.exit(128 + signalNumber(signal));
});
signals.listen(LATCHED_SIGNALS);

const context: CommandContext = {
  env: process.env,
  signals,
  stdout: (text) => process.stdout.write(text),
  stdoutIsTerminal: process.stdout.isTTY === true,
  io: {
    stderr: (text) => process.stderr.write(text),
    hostname: () => hostname(),
    readFile: (path) => readFileSync(path, 'utf8'),
    pid: process.pid,
  },
};

main(process.argv.slice(2), context).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`hpctrain: internal error (please report it): ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 70;
  },
);
