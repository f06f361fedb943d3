// Options shared by every command that joins a job (rendezvous now, train later).
import { SCHEDULER_CHOICES } from '../env/detect.js';
import type { SchedulerName } from '../env/types.js';
import type { JoinOptions } from '../join-job.js';
import type { OptionSpec, OptionValues } from '../options.js';

export const JOB_OPTIONS: readonly OptionSpec[] = [
  { name: 'scheduler', type: 'string', env: 'HPCTRAIN_SCHEDULER', default: 'auto', choices: SCHEDULER_CHOICES, valueName: 'NAME',
    describe: 'where rank, size and hosts come from; auto tries local launcher, Slurm, PBS, MPI in that order' },
  { name: 'port', type: 'integer', env: 'HPCTRAIN_PORT', min: 1024, max: 65535 - 64, valueName: 'PORT', defaultText: 'derived from the job id, in 20000-32672',
    describe: 'rendezvous port on rank 0; the ranks on one machine serve on PORT+1, PORT+2, ...' },
  { name: 'iface', type: 'string', env: 'HPCTRAIN_IFACE', valueName: 'NAME', defaultText: "the scheduler's node name",
    describe: 'network interface whose address the other ranks should use (e.g. ib0)' },
  { name: 'rendezvous-timeout', type: 'number', env: 'HPCTRAIN_RENDEZVOUS_TIMEOUT', default: 120, min: 1, valueName: 'SECONDS',
    describe: 'how long rank 0 waits for every rank to join' },
  { name: 'num-ps', type: 'integer', env: 'HPCTRAIN_NUM_PS', default: 0, min: 0, valueName: 'K',
    describe: 'the first K ranks become parameter servers, the rest workers' },
];

export function readJoinOptions(values: OptionValues): JoinOptions {
  return {
    scheduler: values.scheduler as SchedulerName | 'auto',
    port: values.port as number | undefined,
    iface: values.iface as string | undefined,
    rendezvousTimeoutS: values['rendezvous-timeout'] as number,
    numPs: values['num-ps'] as number,
  };
}
