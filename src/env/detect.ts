// Which scheduler started us. Read once, at the edge, from process.env; everything after takes the
// returned JobEnv.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { OptionsError } from '../errors.js';
import { localProvider } from './local.js';
import { mpiProvider } from './mpi.js';
import { pbsProvider } from './pbs.js';
import { slurmProvider } from './slurm.js';
import type { Env, EnvIo, EnvProvider, JobEnv, SchedulerName } from './types.js';

/**
 * Tried in this order; the first whose marker variables exist wins. The order matters:
 * - local first: `hpctrain launch` may run inside a Slurm or PBS allocation, and the variables it
 *   sets for its children are the truth for them;
 * - slurm and pbs before plain mpi: mpirun inside a job still needs the job's node list;
 * - local again as the fallback: no scheduler at all is a job of one process.
 */
export const PROVIDERS: readonly EnvProvider[] = [localProvider, slurmProvider, pbsProvider, mpiProvider];

export const SCHEDULER_CHOICES = ['auto', ...PROVIDERS.map((p) => p.name)] as const;

export const defaultEnvIo: EnvIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  hostname: () => hostname(),
};

export function detectEnv(env: Env, scheduler: SchedulerName | 'auto' = 'auto', io: EnvIo = defaultEnvIo): JobEnv {
  if (scheduler !== 'auto') {
    const forced = PROVIDERS.find((p) => p.name === scheduler);
    if (!forced) throw new OptionsError(`--scheduler "${scheduler}" is not one of ${SCHEDULER_CHOICES.join(', ')}`);
    return forced.read(env, io);
  }
  const provider = PROVIDERS.find((p) => p.detect(env)) ?? localProvider;
  return provider.read(env, io);
}
