// The scaling study's collect: every job of the manifest (its run directory's summary.json and
// metrics.csv, its log, what the scheduler says of it) into one CSV, a row per job and a row per
// node count and strategy over the repeats, with speed-up and efficiency against the one-node run.
// A job that failed or has not finished is a row too, with its id and why.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunJobFacts } from '../../src/commands/train-records.js';
import { readStepCsv, type StepRecord } from '../../src/metrics/csv.js';
import type { RunSummary } from '../../src/metrics/summary.js';
import { mean, median, runBenchIfMain, writeCsv } from '../figures.js';
import { manifestPath, readManifest, type Attempt, type Manifest, type ManifestJob } from './manifest.js';
import { batchJobState } from './schedulers.js';
import { parseStudyArgs } from './study-args.js';
import { COLUMNS, formatRow, type StudyRow } from './table.js';

const HELP = `Usage: node dist/bench/scaling/collect.js --out DIR [--csv PATH]

Reads the scaling study in DIR (its manifest.json, written by bench/scaling/sweep.js, and each
job's run directory and log) and writes one CSV, a row per job (kind=job) and a row per node count
and strategy over the repeats (kind=study), and prints one line per row:
  scaling kind=K nodes=N strategy=S workers=W img_per_s=X se=E speedup=U efficiency=F ...
img_per_s is the mean over the timed steps (after the warm-up steps) of each step's global batch
over its time, se its standard error (over the steps for a job, over the repeats for a study row);
step_ms_median and _p90 are the step times; data/compute/comm_share the parts of the step time;
speed-up img_per_s(N) / img_per_s(1 node, allreduce) and efficiency speed-up / N (weak or strong
scaling as the sweep ran). A failed or unfinished job is a row with its state, job id and reason,
and a line on stderr; the exit status is then 3.

Options:
  --out DIR      the study's folder                          [bench/results/scaling]
  --csv PATH     where to write the CSV                      [DIR/scaling.csv]
  -h, --help     this text
`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseStudyArgs(argv, HELP);
  if (!parsed) return 0;
  const { out, csv } = parsed;
  const manifest = readManifest(manifestPath(out));
  const rows = await collectStudy(manifest);
  writeCsv(csv, COLUMNS, rows.map(formatRow));
  let failures = 0;
  for (const row of rows) {
    if (row.state === 'ok') console.log(`scaling kind=${row.kind} nodes=${row.nodes} strategy=${row.strategy} workers=${row.workers} repeats=${row.repeats} ` +
      `img_per_s=${row.imagesPerSecond!.toFixed(2)} se=${row.imagesPerSecondSe!.toFixed(2)} step_ms_median=${row.stepMsMedian!.toFixed(0)} ` +
      `comm_share=${row.commShare!.toFixed(3)} speedup=${row.speedup?.toFixed(2) ?? 'n/a'} efficiency=${row.efficiency?.toFixed(3) ?? 'n/a'}${row.kind === 'job' ? ` job=${row.jobId}` : ''}`);
    else {
      failures++;
      console.error(`scaling ${row.state} job=${row.jobId || '-'} key=${row.key} nodes=${row.nodes} strategy=${row.strategy}: ${row.reason}`);
    }
  }
  console.log(`scaling csv=${csv} jobs=${manifest.jobs.length} failed_or_unfinished=${failures} scaling=${manifest.settings.scaling}`);
  return failures > 0 ? 3 : 0;
}

/** The study's rows: its jobs in the manifest's order, then a row per node count and strategy. */
export async function collectStudy(manifest: Manifest): Promise<StudyRow[]> {
  const jobs = await Promise.all(manifest.jobs.map((job) => collectJob(manifest, job)));
  const study = summarizeRepeats(jobs);
  const baseline = study.find((row) => row.nodes === 1 && row.strategy === 'allreduce' && row.state === 'ok')?.imagesPerSecond;
  for (const row of [...jobs, ...study]) {
    if (row.state !== 'ok' || baseline === undefined) continue;
    row.speedup = row.imagesPerSecond! / baseline;
    row.efficiency = row.speedup / row.nodes;
  }
  return [...jobs, ...study];
}

function baseRow(manifest: Manifest, job: ManifestJob): StudyRow {
  return {
    kind: 'job', key: job.key, state: 'ok', jobId: job.attempts.at(-1)?.jobId ?? '', reason: '', via: manifest.via, scaling: manifest.settings.scaling,
    nodes: job.nodes, ranks: job.ranks, workers: job.workers, servers: job.servers, strategy: job.strategy, batchSize: job.batchSize, globalBatch: job.globalBatch,
    imageSize: manifest.settings.imageSize, repeats: 1, timedSteps: 0,
  };
}

async function collectJob(manifest: Manifest, job: ManifestJob): Promise<StudyRow> {
  const row = baseRow(manifest, job);
  const attempt = job.attempts.at(-1);
  if (!attempt) return { ...row, state: 'not-submitted', reason: 'the sweep never submitted it (cut short?); run the sweep again with the same options' };
  const summaryPath = join(attempt.runDir, 'summary.json');
  if (!existsSync(summaryPath)) return { ...row, ...await whyUnfinished(manifest, attempt) };
  // What reportRun (src/commands/train-records.ts) adds to the run's figures; an older summary.json may lack it.
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as RunSummary & Partial<{ backend: string; job: RunJobFacts; globalBatch: number; trainableParameters: number }>;
  const timed = readStepCsv(join(attempt.runDir, 'metrics.csv')).filter((record) => record.step > manifest.settings.warmupSteps);
  if (timed.length < 2) {
    return { ...row, state: 'failed', reason: `${join(attempt.runDir, 'metrics.csv')} has ${timed.length} step(s) after the ${manifest.settings.warmupSteps} warm-up step(s); the job should have trained ${manifest.settings.timedSteps}` };
  }
  return { ...row, ...stepFigures(timed, summary.globalBatch ?? job.globalBatch), backend: summary.backend,
    gradientBytes: summary.trainableParameters === undefined ? undefined : summary.trainableParameters * 4, hosts: summary.job?.hosts.join(' ') };
}

/** img/s per step (the global batch over the step's time): mean and standard error, step-time quantiles, the shares. */
export function stepFigures(records: readonly StepRecord[], globalBatch: number): Pick<StudyRow, 'timedSteps' | 'imagesPerSecond' | 'imagesPerSecondSe' | 'stepMsMedian' | 'stepMsP90' | 'dataShare' | 'computeShare' | 'commShare'> {
  const rates = records.map((r) => (globalBatch * 1000) / r.stepMs);
  const total = records.reduce((sum, r) => sum + r.stepMs, 0);
  const sorted = records.map((r) => r.stepMs).sort((a, b) => a - b);
  return {
    timedSteps: records.length, imagesPerSecond: mean(rates), imagesPerSecondSe: standardError(rates),
    stepMsMedian: median(sorted), stepMsP90: sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)]!,
    dataShare: records.reduce((s, r) => s + r.dataMs, 0) / total, computeShare: records.reduce((s, r) => s + r.computeMs, 0) / total,
    commShare: records.reduce((s, r) => s + r.commMs, 0) / total,
  };
}

export function standardError(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1) / values.length);
}

async function whyUnfinished(manifest: Manifest, attempt: Attempt): Promise<Pick<StudyRow, 'state' | 'reason'>> {
  const logLine = lastErrorLine(attempt.log);
  const noSummary = `no summary.json in ${attempt.runDir}`;
  if (manifest.via === 'local') {
    if (attempt.exitCode === undefined) return { state: 'failed', reason: `${noSummary}: the sweep stopped while it ran${logLine ? `; ${logLine}` : ''}` };
    return { state: 'failed', reason: `${noSummary}: exit status ${attempt.exitCode}${logLine ? `; ${logLine}` : ''} (log ${attempt.log})` };
  }
  const state = await batchJobState(manifest.via, attempt.jobId);
  if (state.alive) return { state: 'unfinished', reason: `still ${state.detail}; collect again when it has ended (sweep --wait waits)` };
  return { state: 'failed', reason: `${noSummary}: ${state.detail ?? 'the scheduler no longer knows the job'}${logLine ? `; ${logLine}` : ''} (log ${attempt.log})` };
}

/** The last line of the log that says what went wrong, if any. */
function lastErrorLine(log: string): string | undefined {
  if (!existsSync(log)) return `no log at ${log} (the job never started?)`;
  return readFileSync(log, 'utf8').split('\n').filter((line) => /error|killed|CANCELLED|DUE TO TIME LIMIT|stopped at step/i.test(line)).at(-1)?.trim();
}

/** A row per node count and strategy: the mean of its repeats' figures, and the standard error over them. */
function summarizeRepeats(jobs: StudyRow[]): StudyRow[] {
  const groups = new Map<string, StudyRow[]>();
  for (const row of jobs) groups.set(`${row.nodes}|${row.strategy}`, [...(groups.get(`${row.nodes}|${row.strategy}`) ?? []), row]);
  return [...groups.values()].map((rows) => {
    const ok = rows.filter((r) => r.state === 'ok');
    const first = rows[0]!;
    const base: StudyRow = { ...first, kind: 'study', key: first.key.replace(/-r\d+$/, ''), jobId: ok.map((r) => r.jobId).join(' '), repeats: ok.length, reason: '' };
    if (ok.length === 0) return { ...base, state: 'failed', reason: `none of its ${rows.length} job(s) finished` };
    const avg = (pick: (r: StudyRow) => number) => mean(ok.map(pick));
    const rates = ok.map((r) => r.imagesPerSecond!);
    return {
      ...base, timedSteps: ok.reduce((s, r) => s + r.timedSteps, 0), imagesPerSecond: mean(rates),
      imagesPerSecondSe: ok.length >= 2 ? standardError(rates) : ok[0]!.imagesPerSecondSe, stepMsMedian: avg((r) => r.stepMsMedian!), stepMsP90: avg((r) => r.stepMsP90!),
      dataShare: avg((r) => r.dataShare!), computeShare: avg((r) => r.computeShare!), commShare: avg((r) => r.commShare!),
      reason: ok.length < rows.length ? `${rows.length - ok.length} of ${rows.length} repeat(s) failed` : '',
    };
  });
}

runBenchIfMain(import.meta.url, main);
