// The ranks of a training job, joined and connected: who serves and who works, the transport
// between them (authenticated with a key from the job secret), the workers' own collectives, and
// the gradient exchange of the chosen strategy. One rank outside a scheduler is a group of one
// worker with nothing to connect.
import { Collectives } from '../comm/collectives.js';
import { subgroup, type Link } from '../comm/group.js';
import type { Placement } from '../comm/placement.js';
import type { Transport } from '../comm/transport.js';
import type { ExchangeConfig, GradientExchange, Strategy } from '../comm/types.js';
import { OptionsError } from '../errors.js';
import type { VectorUpdater } from '../optim/updater.js';
import type { JoinOptions } from '../join-job.js';
import { createLog, type Log } from '../log.js';
import type { LauncherName, SchedulerName } from '../env/types.js';
import type { CommandContext } from './types.js';

export interface TrainGroup {
  jobId: string;
  scheduler: SchedulerName;
  launcher: LauncherName;
  rank: number;
  /** The job's ranks, servers too. */
  size: number;
  /** The job's nodes as the scheduler gave them, each once. */
  hosts: string[];
  /** This rank's place on its node, which picks its GPU. */
  localRank: number;
  /** The job's ranks (servers too) on this rank's node: they share its cores and GPUs. */
  localSize: number;
  isServer: boolean;
  /** Transport ranks. */
  servers: number[];
  workers: number[];
  /** This rank's place among the workers (-1 on a server). */
  workerIndex: number;
  link: Link;
  /** Collectives among the workers only. */
  workerGroup: Collectives;
  log: Log;
  markDeparted(rank: number): void;
  /** `updater` applies the allreduce strategy's update (the rank's compute threads); parameter servers apply their own. */
  exchange(config: ExchangeConfig, placement: Placement, updater: VectorUpdater): Promise<GradientExchange>;
  /** After a normal end (`finished`), the workers first meet in a barrier: so that none takes another's exit for a death. */
  close(finished: boolean): Promise<void>;
}

const SOLO_LINK: Link = {
  rank: 0,
  size: 1,
  send: () => Promise.reject(new Error('a job of one rank sends nothing')),
  receive: () => Promise.reject(new Error('a job of one rank receives nothing')),
};

export async function openTrainGroup(joinOptions: JoinOptions, strategy: Strategy, commTimeoutS: number, context: CommandContext): Promise<TrainGroup> {
  const { detectEnv } = await import('../env/detect.js');
  const job = detectEnv(context.env, joinOptions.scheduler, context.io);
  if (job.size === 1) {
    if (strategy === 'ps') throw new OptionsError('--strategy ps needs at least 2 ranks: parameter servers and workers', 'start more ranks, or use --strategy allreduce');
    const workerGroup = new Collectives(SOLO_LINK);
    const { AllreduceExchange } = await import('../comm/ring-allreduce.js');
    return {
      jobId: job.jobId, scheduler: job.scheduler, launcher: job.launcher, rank: 0, size: 1, hosts: job.hosts, localRank: job.localRank, localSize: job.localSize, isServer: false, servers: [], workers: [0], workerIndex: 0, link: SOLO_LINK, workerGroup,
      log: createLog(context.io.stderr, 'train'),
      markDeparted: () => {},
      exchange: async (config, _placement, updater) => new AllreduceExchange(workerGroup, config, updater),
      close: async () => {},
    };
  }
  return openJobGroup(joinOptions, commTimeoutS, context);
}

async function openJobGroup(joinOptions: JoinOptions, commTimeoutS: number, context: CommandContext): Promise<TrainGroup> {
  const { joinJob } = await import('../join-job.js');
  const { servicePorts } = await import('../cluster/cluster-spec.js');
  const { deriveCommKey } = await import('../comm/frames.js');
  const { Transport } = await import('../comm/transport.js');
  const joined = await joinJob(joinOptions, context.env, context.io);
  const table = joined.rendezvous.table;
  const ports = servicePorts(table, joined.port);
  let transport: Transport;
  try {
    // Rank 0's random session makes this run's key differ from any earlier run's under the same
    // job id and secret (a requeued job), so that no (key, nonce) pair is ever used twice.
    const session = `${joined.job.jobId}/${joined.rendezvous.session}`;
    transport = await Transport.open({
      rank: joined.job.rank,
      peers: table.map((member) => ({ rank: member.rank, host: member.host, address: member.address, port: ports[member.rank]! })),
      key: deriveCommKey(context.env.HPCTRAIN_SECRET ?? 'no secret: unauthenticated', session),
      timeoutMs: commTimeoutS * 1000,
      log: joined.log,
    });
  } catch (error) {
    await joined.rendezvous.close();
    throw error;
  }
  const rank = joined.job.rank;
  const servers = table.map((m) => m.rank).filter((r) => r < joinOptions.numPs);
  const workers = table.map((m) => m.rank).filter((r) => r >= joinOptions.numPs);
  const isServer = servers.includes(rank);
  // The workers' ring keeps each node's ranks together; their numbers (and the first worker) stay.
  const { workerRing } = await import('../cluster/ring-order.js');
  const ringRanks = workerRing(table, joinOptions.numPs);
  const ring = ringRanks.map((r) => workers.indexOf(r));
  if (rank === workers[0] && ring.some((place, i) => place !== i)) joined.log(`the ring runs through the workers in node order: ranks ${ringRanks.join(' ')}`);
  const workerGroup = new Collectives(isServer ? SOLO_LINK : subgroup(transport, workers), isServer ? {} : { ring });
  const markDeparted = (peer: number) => transport.markDeparted(peer);
  return {
    jobId: joined.job.jobId, scheduler: joined.job.scheduler, launcher: joined.job.launcher, rank, size: joined.job.size, hosts: joined.job.hosts, localRank: joined.job.localRank, localSize: joined.job.localSize, isServer, servers, workers, workerIndex: workers.indexOf(rank),
    link: transport, workerGroup, log: joined.log, markDeparted,
    exchange: async (config, placement, updater) => {
      if (servers.length === 0) {
        const { AllreduceExchange } = await import('../comm/ring-allreduce.js');
        return new AllreduceExchange(workerGroup, config, updater);
      }
      const { PsExchange } = await import('../comm/ps-client.js');
      return new PsExchange({ link: transport, servers, workers, config, placement, markDeparted });
    },
    close: async (finished) => {
      try {
        if (finished && !isServer) await workerGroup.barrier();
      } finally {
        await transport.close();
        await joined.rendezvous.close();
      }
    },
  };
}
