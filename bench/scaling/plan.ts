// The jobs of a scaling study, from its options: every node count of the list with every strategy,
// `repeats` times, each a plain description that the sweep submits and collect reads back. Pure,
// so the checks on bad input (an unknown strategy, a parameter server that leaves no worker, a
// global batch the workers cannot share) are tested without a scheduler.
import { BenchError } from '../figures.js';

/** allreduce, or ps with `servers` parameter servers (the job's first ranks). */
export interface StrategySpec {
  name: 'allreduce' | 'ps';
  servers: number;
  /** "allreduce", "ps:2": as on the command line and in the CSV. */
  label: string;
}

export interface StudySettings {
  nodes: number[];
  strategies: StrategySpec[];
  repeats: number;
  ranksPerNode: number;
  /** Weak scaling: a fixed per-worker batch; strong: a fixed global batch shared by the workers. */
  scaling: 'weak' | 'strong';
  /** Per worker (weak) or global (strong). */
  batch: number;
  imageSize: number;
  warmupSteps: number;
  timedSteps: number;
  /** A data directory, or "synthetic". */
  data: string;
  /** More HPCTRAIN_* settings of every job (--classes, --set). */
  env: Record<string, string>;
}

export interface StudyJob {
  /** Unique within the study, a file-name: "n4-ps2-r1". */
  key: string;
  nodes: number;
  ranks: number;
  strategy: string;
  servers: number;
  workers: number;
  /** Per worker. */
  batchSize: number;
  globalBatch: number;
  repeat: number;
}

/** "allreduce,ps,ps:2" -> the strategies, each once. */
export function parseStrategies(text: string): StrategySpec[] {
  const specs = text.split(',').map((item) => item.trim()).filter(Boolean).map((item): StrategySpec => {
    if (item === 'allreduce') return { name: 'allreduce', servers: 0, label: 'allreduce' };
    const ps = /^ps(?::(\d+))?$/.exec(item);
    if (ps) {
      const servers = ps[1] === undefined ? 1 : Number(ps[1]);
      if (servers < 1) throw new BenchError(`--strategies: "${item}" has no parameter server; write ps or ps:K with K >= 1`);
      return { name: 'ps', servers, label: `ps:${servers}` };
    }
    throw new BenchError(`--strategies: "${item}" is not a strategy; use allreduce, ps (one parameter server) or ps:K (K servers), comma-separated`);
  });
  if (specs.length === 0) throw new BenchError('--strategies is empty; use allreduce, ps or ps:K, comma-separated');
  return specs.filter((spec, i) => specs.findIndex((other) => other.label === spec.label) === i);
}

/** A job left out of the study, with why (a ps strategy on too few ranks). */
export interface SkippedJob {
  nodes: number;
  strategy: string;
  reason: string;
}

/**
 * Every job of the study, in submission order, and the combinations that cannot run. The repeats
 * go round the whole list (every node count and strategy once, then again), so that a slow hour
 * on the cluster spreads over all the figures instead of skewing one.
 */
export function planStudy(settings: StudySettings): { jobs: StudyJob[]; skipped: SkippedJob[] } {
  const round: StudyJob[] = [];
  const skipped: SkippedJob[] = [];
  for (const nodes of settings.nodes) {
    for (const strategy of settings.strategies) {
      const ranks = nodes * settings.ranksPerNode;
      const workers = ranks - strategy.servers;
      if (workers < 1) {
        skipped.push({ nodes, strategy: strategy.label, reason: `${strategy.label} needs more than ${strategy.servers} rank(s); ${nodes} node(s) x ${settings.ranksPerNode} rank(s) per node leave no worker` });
        continue;
      }
      let batchSize = settings.batch;
      if (settings.scaling === 'strong') {
        if (settings.batch % workers !== 0) {
          throw new BenchError(`--strong: the global batch ${settings.batch} does not split evenly over ${workers} worker(s) ` +
            `(${nodes} node(s), ${strategy.label}); choose a --batch-size that every worker count divides (e.g. ${leastCommonMultiple(workerCounts(settings))})`);
        }
        batchSize = settings.batch / workers;
      }
      const key = `n${nodes}-${strategy.name === 'ps' ? `ps${strategy.servers}` : 'allreduce'}`;
      round.push({ key, nodes, ranks, strategy: strategy.label, servers: strategy.servers, workers, batchSize, globalBatch: batchSize * workers, repeat: 1 });
    }
  }
  const jobs = Array.from({ length: settings.repeats }, (_, r) => round.map((job) => ({ ...job, key: `${job.key}-r${r + 1}`, repeat: r + 1 }))).flat();
  if (jobs.length === 0) throw new BenchError(`no job can run: ${skipped.map((s) => s.reason).join('; ')}`);
  return { jobs, skipped };
}

function workerCounts(settings: StudySettings): number[] {
  return settings.nodes.flatMap((n) => settings.strategies.map((s) => n * settings.ranksPerNode - s.servers)).filter((w) => w >= 1);
}

function leastCommonMultiple(values: number[]): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return values.reduce((l, v) => (l * v) / gcd(l, v), 1);
}
