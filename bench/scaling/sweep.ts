// The scaling study's sweep: the same training job at every node count and strategy, as real
// jobs through sbatch (slurm/train.slurm), qsub (pbs/train.pbs) or the local launcher, with a
// manifest a second run picks up from. Then bench/scaling/collect.js, plot.js and predict.js.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import minimist from 'minimist';
import { BenchError, parseCount, parseList, rejectUnknown, runBench } from '../figures.js';
import { manifestPath, openManifest, writeManifest, type Attempt, type Manifest, type ManifestJob } from './manifest.js';
import { parseStrategies, planStudy, type StudySettings } from './plan.js';
import { DEFAULT_OUT } from './study-args.js';
import { ALLREDUCE, batchJobState, jobEnvironment, runLocalCommand, runLocalJob, slurmNodeCount, submitBatchJob, submitWrapped, type SubmitOptions } from './schedulers.js';

/** The exchange's sizes for the model's fit: 1 MiB to Inception-V3's 95 MB of gradients. */
const EXCHANGE_SIZES = [2 ** 20, 16 * 2 ** 20, 64 * 2 ** 20, 95_334_272];

const HELP = `Usage: node dist/bench/scaling/sweep.js --via slurm|pbs|local [options]

Submits the same hpctrain training job at every node count of --nodes with every strategy of
--strategies, --repeats times each: through sbatch with slurm/train.slurm (--via slurm), qsub with
pbs/train.pbs (--via pbs), or the local launcher on this machine (--via local: N "nodes" are N
ranks here, one after another). Each job trains --warmup-steps steps, which collect leaves out,
then --steps timed steps, with no evaluation and one checkpoint at the end. By default the jobs run
one after another (each waits for the previous one: sbatch --dependency=afterany, qsub -W
depend=afterany), so that no two share the network; --concurrent submits them to run at once.

The study's folder (--out) gets manifest.json (what was submitted: job ids, run directories,
logs), runs/<job>/ and logs/<job>.out. Run the sweep again with the same options and --out to go
on: jobs that finished are kept, jobs still queued or running are waited for (with --wait),
failed or never submitted ones are submitted (again). Then:
  node dist/bench/scaling/collect.js --out DIR     one CSV of every job (scaling.csv)
  node dist/bench/scaling/plot.js --out DIR        throughput, efficiency, step-time breakdown
  node dist/bench/scaling/predict.js --out DIR     the alpha-beta model's figures at 16..512 nodes

Options:
  --via WAY            slurm, pbs or local                                      (required)
  --nodes LIST         node counts, comma-separated                             [1,2,4]
  --strategies LIST    allreduce, ps (one parameter server, the first rank) or ps:K
                       (K servers), comma-separated                             [allreduce,ps]
  --repeats N          jobs per node count and strategy (round the whole list)  [1]
  --ranks-per-node R   ranks on each node (one per GPU on GPU nodes)            [1]
  --batch-size B       images per worker and step (weak scaling)                [16]
  --strong             strong scaling: --batch-size is the global batch, split over the workers
  --image-size S       75..299                                                  [299]
  --steps N            timed steps per job                                      [20]
  --warmup-steps N     steps before them, left out of the figures               [3]
  --data DIR           an ImageNet folder or TFRecords on every node            [synthetic]
  --classes N          classes of the synthetic data (the model's head)         [1000]
  --time LIMIT         the scheduler's time limit per job, e.g. 00:30:00        [the script's]
  --submit-args ARGS   more arguments for sbatch or qsub, e.g. "--partition=gpu --account=phy"
  --set NAME=VALUE     another hpctrain setting for every job (HPCTRAIN_NAME), repeatable,
                       e.g. --set COMPUTE_THREADS=8 --set IFACE=ib0
  --exchange           also measure the gradient exchange across the nodes (bench/allreduce on
                       2..the most nodes, with srun, one rank per node; --via local: here), into
                       DIR/allreduce.csv, which predict fits its model on (not with --via pbs:
                       there, run bench/allreduce on the nodes yourself)
  --concurrent         submit every job at once, none waiting for another
  --wait               wait for every job to end (batch jobs; local jobs always run to the end)
  --out DIR            the study's folder                                       [bench/results/scaling]
  -h, --help           this text
`;

async function main(argv: string[]): Promise<number> {
  const args = minimist(argv, {
    string: ['via', 'nodes', 'strategies', 'repeats', 'ranks-per-node', 'batch-size', 'image-size', 'steps', 'warmup-steps', 'data', 'classes', 'time', 'submit-args', 'set', 'out'],
    boolean: ['help', 'strong', 'concurrent', 'wait', 'exchange'], alias: { h: 'help' }, unknown: rejectUnknown,
  });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const via = args.via as string | undefined;
  if (via !== 'slurm' && via !== 'pbs' && via !== 'local') throw new BenchError(`--via ${via === undefined ? 'is required' : `"${via}" is not a way to run`}: use slurm (sbatch), pbs (qsub) or local (the local launcher)`);
  const settings: StudySettings = {
    nodes: parseList(args.nodes ?? '1,2,4', '--nodes', 1, 100_000).sort((a, b) => a - b),
    strategies: parseStrategies(String(args.strategies ?? 'allreduce,ps')),
    repeats: parseCount(args.repeats ?? '1', '--repeats', 1, 100),
    ranksPerNode: parseCount(args['ranks-per-node'] ?? '1', '--ranks-per-node', 1, 1024),
    scaling: args.strong ? 'strong' : 'weak',
    batch: parseCount(args['batch-size'] ?? '16', '--batch-size', 1, 1_000_000),
    imageSize: parseCount(args['image-size'] ?? '299', '--image-size', 75, 299),
    warmupSteps: parseCount(args['warmup-steps'] ?? '3', '--warmup-steps', 1, 10_000),
    timedSteps: parseCount(args.steps ?? '20', '--steps', 2, 1_000_000),
    data: args.data === undefined ? 'synthetic' : resolve(String(args.data)),
    env: parseSettings([args.set ?? []].flat().map(String)),
  };
  if (settings.nodes.length === 0) throw new BenchError('--nodes is empty; give node counts, e.g. 1,2,4,8');
  if (settings.data !== 'synthetic' && !existsSync(settings.data)) throw new BenchError(`--data ${settings.data} does not exist here; give a folder every node can read`);
  if (args.classes !== undefined) {
    if (settings.data !== 'synthetic') throw new BenchError('--classes is for synthetic data; a data directory has its own classes');
    settings.env.HPCTRAIN_NUM_CLASSES = String(parseCount(args.classes, '--classes', 2, 100_000));
  }
  if (via === 'local' && (args.time !== undefined || args['submit-args'] !== undefined)) throw new BenchError('--time and --submit-args are for sbatch and qsub; --via local runs no scheduler');
  const options: SubmitOptions = { via, time: args.time as string | undefined, submitArgs: String(args['submit-args'] ?? '').split(/\s+/).filter(Boolean) };
  const out = resolve(args.out ?? DEFAULT_OUT);
  const { jobs, skipped } = planStudy(settings);
  for (const skip of skipped) console.log(`sweep skipped nodes=${skip.nodes} strategy=${skip.strategy}: ${skip.reason}`);
  if (via === 'slurm') await checkPartition(settings.nodes.at(-1)!, options.submitArgs);
  const exchangeRanks = settings.nodes.filter((n) => n >= 2);
  if (args.exchange && via === 'pbs') throw new BenchError('--exchange runs bench/allreduce with srun, which PBS has not; measure it on the nodes yourself (bench/allreduce) and give predict --allreduce-csv');
  if (args.exchange && exchangeRanks.length === 0) throw new BenchError('--exchange needs a node count of 2 or more in --nodes: an exchange between one node and itself measures nothing');
  const manifest = openManifest(out, via, settings, jobs, skipped);
  writeManifest(out, manifest);
  console.log(`sweep ${jobs.length} job(s) via ${via}, ${settings.scaling} scaling, manifest ${manifestPath(out)}`);
  if (args.exchange) await measureExchange(out, manifest, exchangeRanks, options);
  if (via === 'local') await runLocally(out, manifest);
  else await submitAll(out, manifest, options, args.concurrent === true);
  if (via !== 'local' && args.wait) await waitForAll(manifest);
  console.log(`sweep next: node dist/bench/scaling/collect.js --out ${out}`);
  return 0;
}

/** --set NAME=VALUE, with or without the HPCTRAIN_ prefix. */
function parseSettings(items: string[]): Record<string, string> {
  return Object.fromEntries(items.map((item) => {
    const match = /^(?:HPCTRAIN_)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(item);
    if (!match) throw new BenchError(`--set "${item}" is not NAME=VALUE with an hpctrain setting's name, e.g. --set COMPUTE_THREADS=8`);
    return [`HPCTRAIN_${match[1]}`, match[2]!];
  }));
}

/** The largest node count must fit the partition: a job asking for more would wait forever. */
async function checkPartition(nodes: number, submitArgs: string[]): Promise<void> {
  const partition = /^(?:--partition=|-p)(.+)$/.exec(submitArgs.find((a) => /^(--partition=|-p.)/.test(a)) ?? '')?.[1];
  const total = await slurmNodeCount(partition);
  if (nodes > total) throw new BenchError(`--nodes asks for ${nodes} nodes, but the ${partition ? `partition ${partition}` : 'cluster'} has ${total} (sinfo); drop the larger counts or name another partition with --submit-args --partition=P`);
}

const current = (job: ManifestJob): Attempt | undefined => job.attempts.at(-1);
const finished = (attempt: Attempt | undefined): boolean => attempt !== undefined && existsSync(join(attempt.runDir, 'summary.json'));

/** Where the job's next attempt runs and logs: runs/<key>[-aN], logs/<key>[-aN].out. */
function nextAttemptPaths(out: string, job: ManifestJob): Pick<Attempt, 'runDir' | 'log'> {
  const n = job.attempts.length + 1;
  const name = n === 1 ? job.key : `${job.key}-a${n}`;
  return { runDir: join(out, 'runs', name), log: join(out, 'logs', `${name}.out`) };
}

async function runLocally(out: string, manifest: Manifest): Promise<void> {
  for (const job of manifest.jobs) {
    if (finished(current(job))) {
      console.log(`sweep ${job.key}: done before (${current(job)!.runDir})`);
      continue;
    }
    const attempt: Attempt = { jobId: `local-${job.key}-${job.attempts.length + 1}`, ...nextAttemptPaths(out, job), submittedAt: new Date().toISOString() };
    job.attempts.push(attempt);
    writeManifest(out, manifest);
    console.log(`sweep ${job.key}: ${job.ranks} rank(s) here, ${job.strategy}, batch ${job.batchSize} per worker; log ${attempt.log}`);
    attempt.exitCode = await runLocalJob(job, jobEnvironment(job, manifest.settings, attempt.runDir), attempt.log);
    writeManifest(out, manifest);
    console.log(`sweep ${job.key}: exit ${attempt.exitCode}${attempt.exitCode === 0 ? '' : ` (see ${attempt.log})`}`);
  }
}

/** bench/allreduce on 2..N nodes: a batch job of its own through srun (the first of the chain), or here. */
async function measureExchange(out: string, manifest: Manifest, ranks: number[], options: SubmitOptions): Promise<void> {
  const csv = join(out, 'allreduce.csv');
  if (existsSync(csv)) {
    console.log(`sweep exchange: measured before (${csv})`);
    return;
  }
  const log = join(out, 'logs', 'allreduce.out');
  const args = ['--ranks', ranks.join(','), '--sizes', EXCHANGE_SIZES.join(','), '--repeats', '5', '--csv', csv];
  if (manifest.via === 'local') {
    console.log(`sweep exchange: bench/allreduce here on ${ranks.join(',')} ranks; log ${log}`);
    const exitCode = await runLocalCommand([ALLREDUCE, ...args], log);
    manifest.exchange = { jobId: 'local-allreduce', log, submittedAt: new Date().toISOString(), exitCode, csv };
    if (exitCode !== 0) throw new BenchError(`bench/allreduce exited ${exitCode}; see ${log}`);
  } else {
    const alive = manifest.exchange && (await batchJobState('slurm', manifest.exchange.jobId)).alive;
    if (alive) {
      console.log(`sweep exchange: job ${manifest.exchange!.jobId} is still queued or running`);
      return;
    }
    const jobId = await submitWrapped(Math.max(...ranks), `node ${ALLREDUCE} --srun ${args.join(' ')}`, log, options);
    manifest.exchange = { jobId, log, submittedAt: new Date().toISOString(), csv };
    console.log(`sweep exchange: submitted job ${jobId} (bench/allreduce --srun on ${ranks.join(',')} nodes); log ${log}`);
  }
  writeManifest(out, manifest);
}

async function submitAll(out: string, manifest: Manifest, options: SubmitOptions, concurrent: boolean): Promise<void> {
  const via = manifest.via as 'slurm' | 'pbs';
  let previous: string | undefined = manifest.exchange && !existsSync(manifest.exchange.csv) ? manifest.exchange.jobId : undefined;
  for (const job of manifest.jobs) {
    const last = current(job);
    if (finished(last)) {
      console.log(`sweep ${job.key}: done before (job ${last!.jobId})`);
      continue;
    }
    if (last) {
      const state = await batchJobState(via, last.jobId);
      if (state.alive) {
        console.log(`sweep ${job.key}: job ${last.jobId} is still ${state.detail}`);
        previous = last.jobId;
        continue;
      }
      console.log(`sweep ${job.key}: job ${last.jobId} ended without a summary (${state.detail ?? 'no longer known to the scheduler'}); submitting it again`);
    }
    const paths = nextAttemptPaths(out, job);
    const jobId = await submitBatchJob(job, jobEnvironment(job, manifest.settings, paths.runDir), paths.log, options, concurrent ? undefined : previous);
    const attempt: Attempt = { jobId, ...paths, submittedAt: new Date().toISOString() };
    job.attempts.push(attempt);
    writeManifest(out, manifest);
    previous = attempt.jobId;
    console.log(`sweep ${job.key}: submitted job ${attempt.jobId} (${job.nodes} node(s), ${job.strategy}, batch ${job.batchSize} per worker); log ${attempt.log}`);
  }
}

async function waitForAll(manifest: Manifest): Promise<void> {
  const via = manifest.via as 'slurm' | 'pbs';
  const pending = new Set(manifest.jobs.map(current).filter((a): a is Attempt => a !== undefined && !finished(a)).map((a) => a.jobId));
  if (manifest.exchange && !existsSync(manifest.exchange.csv)) pending.add(manifest.exchange.jobId);
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const state = await batchJobState(via, id);
      if (!state.alive) {
        pending.delete(id);
        console.log(`sweep job ${id} ended: ${state.detail ?? 'gone from the queue'}`);
      }
    }
    if (pending.size > 0) await new Promise((done) => setTimeout(done, 2000));
  }
}

runBench(main);
