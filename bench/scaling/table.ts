// A row of the scaling study's CSV (bench/scaling/collect.js writes it, plot.js and predict.js
// read it): the columns, and the conversion both ways.
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { BenchError } from '../figures.js';

export interface StudyRow {
  /** job: one job; study: a node count and strategy over its repeats. */
  kind: 'job' | 'study';
  key: string;
  /** ok, failed, unfinished (still queued or running) or not-submitted. */
  state: string;
  jobId: string;
  reason: string;
  via: string;
  scaling: string;
  nodes: number;
  ranks: number;
  workers: number;
  servers: number;
  strategy: string;
  /** Per worker. */
  batchSize: number;
  globalBatch: number;
  imageSize: number;
  repeats: number;
  timedSteps: number;
  imagesPerSecond?: number;
  imagesPerSecondSe?: number;
  stepMsMedian?: number;
  stepMsP90?: number;
  dataShare?: number;
  computeShare?: number;
  commShare?: number;
  speedup?: number;
  efficiency?: number;
  backend?: string;
  /** What a worker exchanges each step: the trainable parameters as float32. */
  gradientBytes?: number;
  hosts?: string;
}

export const COLUMNS = ['kind', 'key', 'state', 'job_id', 'via', 'scaling', 'nodes', 'ranks', 'workers', 'servers', 'strategy', 'batch_per_worker', 'global_batch',
  'image_size', 'repeats', 'timed_steps', 'img_per_s', 'img_per_s_se', 'step_ms_median', 'step_ms_p90', 'data_share', 'compute_share', 'comm_share', 'speedup',
  'efficiency', 'backend', 'gradient_bytes', 'hosts', 'reason'] as const;

const fixed = (value: number | undefined, digits: number): string => (value === undefined || !Number.isFinite(value) ? '' : value.toFixed(digits));

export function formatRow(row: StudyRow): Record<string, unknown> {
  return {
    kind: row.kind, key: row.key, state: row.state, job_id: row.jobId, via: row.via, scaling: row.scaling, nodes: row.nodes, ranks: row.ranks, workers: row.workers,
    servers: row.servers, strategy: row.strategy, batch_per_worker: row.batchSize, global_batch: row.globalBatch, image_size: row.imageSize, repeats: row.repeats,
    timed_steps: row.timedSteps, img_per_s: fixed(row.imagesPerSecond, 3), img_per_s_se: fixed(row.imagesPerSecondSe, 3), step_ms_median: fixed(row.stepMsMedian, 1),
    step_ms_p90: fixed(row.stepMsP90, 1), data_share: fixed(row.dataShare, 4), compute_share: fixed(row.computeShare, 4), comm_share: fixed(row.commShare, 4),
    speedup: fixed(row.speedup, 3), efficiency: fixed(row.efficiency, 3), backend: row.backend ?? '', gradient_bytes: row.gradientBytes ?? '', hosts: row.hosts ?? '', reason: row.reason,
  };
}

/** The rows of a CSV that collect wrote; a file of another shape is an error that says so. */
export function readStudyCsv(path: string): StudyRow[] {
  let records: Record<string, string>[];
  try {
    records = parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  } catch (error) {
    throw new BenchError(`cannot read ${path}: ${(error as Error).message}; run bench/scaling/collect.js first`);
  }
  const missing = COLUMNS.filter((c) => records.length > 0 && !(c in records[0]!));
  if (records.length === 0 || missing.length > 0) throw new BenchError(`${path} is not a scaling study's CSV${missing.length ? ` (no ${missing.join(', ')})` : ' (no rows)'}; run bench/scaling/collect.js to write it`);
  const num = (text: string | undefined): number | undefined => (text === undefined || text === '' ? undefined : Number(text));
  return records.map((r) => ({
    kind: r.kind as 'job' | 'study', key: r.key!, state: r.state!, jobId: r.job_id!, reason: r.reason!, via: r.via!, scaling: r.scaling!, nodes: Number(r.nodes),
    ranks: Number(r.ranks), workers: Number(r.workers), servers: Number(r.servers), strategy: r.strategy!, batchSize: Number(r.batch_per_worker),
    globalBatch: Number(r.global_batch), imageSize: Number(r.image_size), repeats: Number(r.repeats), timedSteps: Number(r.timed_steps),
    imagesPerSecond: num(r.img_per_s), imagesPerSecondSe: num(r.img_per_s_se), stepMsMedian: num(r.step_ms_median), stepMsP90: num(r.step_ms_p90),
    dataShare: num(r.data_share), computeShare: num(r.compute_share), commShare: num(r.comm_share), speedup: num(r.speedup), efficiency: num(r.efficiency),
    backend: r.backend, gradientBytes: num(r.gradient_bytes), hosts: r.hosts,
  }));
}
