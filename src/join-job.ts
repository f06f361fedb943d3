// The first three stages of the data flow strung together: environment -> rendezvous -> cluster
// spec. Every multi-rank command (rendezvous now, train later) starts here.
import { performance } from 'node:perf_hooks';
import { buildClusterSpec, roleOf, servicePorts, validateNumPs, type ClusterSpec, type TaskRole } from './cluster/cluster-spec.js';
import { assertPortFree, portFromJobId } from './cluster/ports.js';
import { detectEnv } from './env/detect.js';
import type { Env, EnvIo, JobEnv, SchedulerName } from './env/types.js';
import { describeRank } from './errors.js';
import { createLog, type Log } from './log.js';
import { interfaceAddress } from './rendezvous/address.js';
import { rendezvous, type Rendezvous } from './rendezvous/allgather.js';

export interface JoinOptions {
  scheduler: SchedulerName | 'auto';
  port: number | undefined;
  iface: string | undefined;
  rendezvousTimeoutS: number;
  numPs: number;
}

export interface JoinedJob {
  job: JobEnv;
  port: number;
  rendezvous: Rendezvous;
  spec: ClusterSpec;
  role: TaskRole;
  log: Log;
  /** Milliseconds from process start until the spec was known. */
  elapsedMs: number;
}

export interface ProcessIo extends EnvIo {
  stderr(text: string): void;
  pid: number;
}

export async function joinJob(options: JoinOptions, env: Env, io: ProcessIo): Promise<JoinedJob> {
  const job = detectEnv(env, options.scheduler, io);
  const host = io.hostname();
  const log = createLog(io.stderr, describeRank(job.rank, host));
  validateNumPs(options.numPs, job.size);
  const secret = env.HPCTRAIN_SECRET;
  if (!secret) warnUnauthenticated(log);
  const port = options.port ?? portFromJobId(job.jobId);
  const address = options.iface ? interfaceAddress(options.iface) : advertisedAddress(job, host);
  const joined = await rendezvous({
    jobId: job.jobId,
    rank: job.rank,
    size: job.size,
    coordinator: job.coordinator,
    port,
    // Every interface: members reach rank 0 by its node name, whichever address that resolves to;
    // --iface chooses only what this rank advertises for the traffic that follows.
    bindAddress: '0.0.0.0',
    secret,
    timeoutMs: options.rendezvousTimeoutS * 1000,
    self: { rank: job.rank, host, address, localRank: job.localRank, pid: io.pid },
    rankHosts: job.rankHosts,
    log,
  });
  const spec = buildClusterSpec(joined.table, options.numPs, port);
  try {
    // Checked now, so that a taken port fails the job at start-up with a clear message, not mid-run.
    const portFlag = options.port === undefined ? `--port (the default ${port} comes from job id ${job.jobId})` : '--port';
    await assertPortFree(servicePorts(joined.table, port)[job.rank]!, host, `service port of rank ${job.rank}`, portFlag);
  } catch (error) {
    await joined.close();
    throw error;
  }
  return { job, port, rendezvous: joined, spec, role: roleOf(job.rank, options.numPs), log, elapsedMs: performance.now() };
}

/** The scheduler's own name for this node is what the other nodes can resolve; locally, loopback. */
function advertisedAddress(job: JobEnv, host: string): string {
  if (job.scheduler === 'local') return '127.0.0.1';
  return job.hosts[job.nodeIndex] ?? host;
}

function warnUnauthenticated(log: Log): void {
  log('WARNING: HPCTRAIN_SECRET is not set: this rendezvous is NOT authenticated, and anyone who can reach its port can join it.');
  log('WARNING: pbs/train.pbs, slurm/train.slurm and `hpctrain launch` set it; with another launcher, export HPCTRAIN_SECRET=$(openssl rand -hex 32) in the job first.');
}
