// The plain description of "who am I in this job" that every later stage takes as input.

export type SchedulerName = 'slurm' | 'pbs' | 'mpi' | 'local';

/** Which program started this process; decides where rank and size come from. */
export type LauncherName = 'srun' | 'aprun' | 'mpirun' | 'pmi' | 'hpctrain-launch' | 'none';

export interface JobEnv {
  scheduler: SchedulerName;
  launcher: LauncherName;
  jobId: string;
  rank: number;
  size: number;
  /** Rank among the processes on this node (picks the GPU). */
  localRank: number;
  /** How many of the job's processes run on this node: local ranks are 0..localSize-1. */
  localSize: number;
  /** Index of this node in `hosts`. */
  nodeIndex: number;
  /** The job's nodes, in scheduler order, each once. */
  hosts: string[];
  /** Where each rank is expected to run, by rank (used to name missing ranks). */
  rankHosts: string[];
  /** Host that runs rank 0, where the rendezvous coordinator listens. */
  coordinator: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** What a provider may read besides the environment: files named by variables (PBS_NODEFILE). */
export interface EnvIo {
  readFile(path: string): string;
  hostname(): string;
}

/** One scheduler or launcher. Each provider lists the variables it reads in its doc comment. */
export interface EnvProvider {
  name: SchedulerName;
  /** Cheap check: do this provider's marker variables exist? */
  detect(env: Env): boolean;
  /** Full read; throws EnvironmentError naming a missing or malformed variable. */
  read(env: Env, io: EnvIo): JobEnv;
}
