// `hpctrain launch -n N -- COMMAND`: N ranks on this machine, as srun would start them on N nodes.
// Output is prefixed with the rank; the first rank to fail stops the others, and its status is ours.
// SIGTERM, SIGUSR1 and SIGUSR2 are passed on to every rank, as Slurm signals a job step's tasks; a
// rank that exits with the requeue status (75: stopped with a checkpoint) is not a failure.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { assertPortFree, portFromJobId, PORT_BLOCK } from '../cluster/ports.js';
import { LaunchError, OptionsError, PortInUseError } from '../errors.js';
import type { OptionValues } from '../options.js';
import { signalNumber, type SignalName } from '../signals.js';
import { REQUEUE_STATUS } from '../train/lifecycle.js';
import type { Command, CommandContext } from './types.js';

const CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));

export const launchCommand: Command = {
  spec: {
    name: 'launch',
    usage: 'hpctrain launch -n N [options] [--] COMMAND [ARGS...]',
    summary:
      'Start N ranks of an hpctrain COMMAND on this machine with a fresh job secret (HPCTRAIN_SECRET),\n' +
      'a job id and a free port, prefix their output with the rank, and, when one rank fails, stop the\n' +
      'others and exit with its status. SIGTERM, SIGUSR1 and SIGUSR2 go on to every rank (train stops\n' +
      `on them with a checkpoint; then every rank, and launch, exit with status ${REQUEUE_STATUS}).\n` +
      'Example: hpctrain launch -n 2 -- rendezvous --num-ps 1',
    options: [
      { name: 'nproc', alias: 'n', type: 'integer', env: 'HPCTRAIN_NPROC', default: 2, min: 1, max: PORT_BLOCK - 1, valueName: 'N',
        describe: 'number of ranks to start' },
      { name: 'port', type: 'integer', env: 'HPCTRAIN_PORT', min: 1024, max: 65535 - PORT_BLOCK, valueName: 'PORT',
        defaultText: 'a free block found from the job id', describe: 'rendezvous port passed to every rank' },
      { name: 'kill-grace', type: 'number', default: 10, min: 0, valueName: 'SECONDS',
        describe: 'after a rank fails, how long the others get to exit on SIGTERM before SIGKILL' },
    ],
    stopEarly: true,
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    const [command, ...args] = positionals;
    const { COMMANDS } = await import('./index.js');
    if (!command) throw new OptionsError('launch needs a command to run, e.g. hpctrain launch -n 2 -- rendezvous');
    if (!(command in COMMANDS) || command === 'launch') {
      const names = Object.keys(COMMANDS).filter((n) => n !== 'launch').join(', ');
      throw new OptionsError(`launch runs an hpctrain command (${names}), not "${command}"`);
    }
    const size = values.nproc as number;
    const jobId = context.env.HPCTRAIN_JOB_ID || `local-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const port = (values.port as number | undefined) ?? (await findFreePortBlock(jobId, size, context.io.hostname()));
    const shared = {
      HPCTRAIN_SIZE: String(size),
      HPCTRAIN_JOB_ID: jobId,
      HPCTRAIN_SECRET: randomBytes(32).toString('hex'),
      HPCTRAIN_PORT: String(port),
      HPCTRAIN_COORDINATOR: '127.0.0.1',
    };
    const graceMs = (values['kill-grace'] as number) * 1000;
    const ranks = Array.from({ length: size }, (_, rank) =>
      execa(process.execPath, [CLI_PATH, command, ...args], {
        env: { ...shared, HPCTRAIN_RANK: String(rank), HPCTRAIN_LOCAL_RANK: String(rank) },
        extendEnv: true,
        stdin: 'ignore',
        buffer: false,
        reject: false,
        forceKillAfterDelay: graceMs,
      }),
    );
    ranks.forEach((subprocess, rank) => {
      prefixLines(subprocess.stdout, `[rank ${rank}] `, context.stdout);
      prefixLines(subprocess.stderr, `[rank ${rank}] `, context.io.stderr);
    });
    return superviseRanks(ranks, context);
  },
};

/** The signals passed on to the ranks as they are. */
const FORWARDED: readonly SignalName[] = ['SIGTERM', 'SIGUSR1', 'SIGUSR2'];

/**
 * Wait for every rank; the first failure stops the rest. Returns the exit status for the
 * launcher: the failure's, else the highest of the ranks' (0, or 75 when they stopped to be requeued).
 */
async function superviseRanks(ranks: ResultPromise[], context: CommandContext): Promise<number> {
  const stderr = context.io.stderr;
  let firstFailure: { rank: number; status: number; how: string } | undefined;
  let highest = 0;
  const live = () => ranks.filter((subprocess) => subprocess.exitCode === null && subprocess.signalCode === null);
  const stopOthers = (): void => {
    for (const subprocess of live()) subprocess.kill('SIGTERM');
  };
  const onInterrupt = (): void => {
    stderr('hpctrain launch: got SIGINT, stopping all ranks\n');
    firstFailure ??= { rank: -1, status: 128 + signalNumber('SIGINT'), how: 'stopped by SIGINT' };
    stopOthers();
  };
  const forward = (signal: SignalName): void => {
    stderr(`hpctrain launch: got ${signal}, passing it on to ${live().length} rank(s)\n`);
    // Straight to the process: the ranks get their time to checkpoint, without SIGKILL after --kill-grace.
    for (const subprocess of live()) if (subprocess.pid !== undefined) process.kill(subprocess.pid, signal);
  };
  process.on('SIGINT', onInterrupt);
  const unwatch = context.signals ? (context.signals.claim(FORWARDED), context.signals.watch(forward)) : undefined;
  try {
    await Promise.all(ranks.map(async (subprocess, rank) => {
      const result = await subprocess;
      if (result.exitCode === 0 || result.exitCode === REQUEUE_STATUS) {
        highest = Math.max(highest, result.exitCode);
        return;
      }
      if (firstFailure) return;
      const status = result.exitCode ?? 128 + signalNumber(result.signal);
      const how = result.exitCode === undefined ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
      firstFailure = { rank, status, how };
      stderr(`hpctrain launch: rank ${rank} ${how}; stopping the other ranks\n`);
      stopOthers();
    }));
  } finally {
    process.off('SIGINT', onInterrupt);
    unwatch?.();
  }
  return firstFailure?.status ?? highest;
}

function prefixLines(stream: Readable | null, prefix: string, write: (text: string) => void): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => write(`${prefix}${line}\n`));
}

/** A port block no one on this machine holds: the rendezvous port and one service port per rank. */
async function findFreePortBlock(jobId: string, size: number, host: string): Promise<number> {
  for (let attempt = 0; attempt < 32; attempt++) {
    const port = portFromJobId(attempt === 0 ? jobId : `${jobId}#${attempt}`);
    try {
      for (let p = port; p <= port + size; p++) await assertPortFree(p, host, 'launch', '--port');
      return port;
    } catch (error) {
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw new LaunchError('found no free block of ports for the ranks in 32 tries', { hint: 'pass a free --port' });
}
