// `hpctrain rendezvous`: join the job, agree on the cluster spec, print it, leave.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { tfConfigFor, roleOf } from '../cluster/cluster-spec.js';
import { workerRing } from '../cluster/ring-order.js';
import { joinJob, type JoinedJob } from '../join-job.js';
import type { OptionValues } from '../options.js';
import { JOB_OPTIONS, readJoinOptions } from './job-options.js';
import type { Command, CommandContext } from './types.js';

export const rendezvousCommand: Command = {
  spec: {
    name: 'rendezvous',
    usage: 'hpctrain rendezvous [options]   (one process per node, started by srun, aprun, mpirun or hpctrain launch)',
    summary:
      'Find the other ranks of this job with an authenticated ZeroMQ allgather, agree on the cluster\n' +
      'spec, and print it: every rank prints one "rendezvous rank=..." line to stdout; rank 0 also\n' +
      'prints the gathered table, the cluster spec, each task\'s TF_CONFIG and the workers\' ring order\n' +
      'as one line of JSON.',
    options: [
      ...JOB_OPTIONS,
      { name: 'output', type: 'string', env: 'HPCTRAIN_SPEC_FILE', valueName: 'FILE', describe: 'rank 0 also writes the JSON, indented, to FILE' },
    ],
    details:
      'The job secret comes from HPCTRAIN_SECRET (never a flag, so it stays out of ps and job logs);\n' +
      'the batch scripts and `hpctrain launch` generate it.',
  },
  async run(values: OptionValues, _positionals: string[], context: CommandContext): Promise<number> {
    const options = readJoinOptions(values);
    const joined = await joinJob(options, context.env, context.io);
    try {
      const document = describeCluster(joined, options.numPs);
      const json = JSON.stringify(document);
      const digest = createHash('sha256').update(JSON.stringify(document.cluster)).digest('hex').slice(0, 16);
      // Nobody prints until everyone has the spec, so a rank that fails shows up as a failed barrier.
      await joined.rendezvous.barrier('cluster-spec');
      const { job, role } = joined;
      if (job.rank === 0) {
        if (values.output) writeFileAtomic(values.output as string, JSON.stringify(document, null, 2) + '\n');
        context.stdout(json + '\n');
      }
      const self = joined.rendezvous.table[job.rank]!;
      context.stdout(
        `rendezvous rank=${job.rank} size=${job.size} scheduler=${job.scheduler} launcher=${job.launcher} host=${self.host} ` +
          `address=${self.address} local_rank=${job.localRank} local_size=${job.localSize} role=${role.type}:${role.index} ` +
          `spec_sha256=${digest} elapsed_ms=${joined.elapsedMs.toFixed(1)}\n`,
      );
      return 0;
    } finally {
      await joined.rendezvous.close();
    }
  },
};

function describeCluster(joined: JoinedJob, numPs: number) {
  const { job, port, spec, rendezvous } = joined;
  return {
    jobId: job.jobId,
    scheduler: job.scheduler,
    launcher: job.launcher,
    size: job.size,
    port,
    numPs,
    table: rendezvous.table,
    cluster: spec,
    tfConfig: rendezvous.table.map((m) => tfConfigFor(spec, roleOf(m.rank, numPs))),
    // The workers' ranks in the order the allreduce ring passes through them.
    ring: workerRing(rendezvous.table, numPs),
  };
}

function writeFileAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
