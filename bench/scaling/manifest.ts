// The study's manifest (<out>/manifest.json): its settings, and for every job the attempts made at
// it (scheduler job id, run directory, log). The sweep writes it after every submission, so a
// sweep cut short loses nothing, and a second sweep with the same --out picks up where it stopped;
// collect reads it to find the run directories.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../src/metrics/summary.js';
import { BenchError } from '../figures.js';
import type { SkippedJob, StudyJob, StudySettings } from './plan.js';

export type Via = 'slurm' | 'pbs' | 'local';

export interface Attempt {
  jobId: string;
  runDir: string;
  log: string;
  submittedAt: string;
  /** The local launcher's exit status, once it has ended (batch jobs: the scheduler knows it). */
  exitCode?: number;
}

export interface ManifestJob extends StudyJob {
  attempts: Attempt[];
}

export interface Manifest {
  version: 1;
  via: Via;
  created: string;
  settings: StudySettings;
  skipped: SkippedJob[];
  jobs: ManifestJob[];
  /** bench/allreduce across the study's nodes (--exchange), the figures predict fits its model on. */
  exchange?: Omit<Attempt, 'runDir'> & { csv: string };
}

export const manifestPath = (out: string): string => join(out, 'manifest.json');

export function readManifest(path: string): Manifest {
  if (!existsSync(path)) throw new BenchError(`${path} does not exist; run bench/scaling/sweep.js with --out to make it, or name the study's folder`);
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  if (manifest.version !== 1 || !Array.isArray(manifest.jobs)) throw new BenchError(`${path} is not a scaling study's manifest (version 1)`);
  return manifest;
}

export function writeManifest(out: string, manifest: Manifest): void {
  writeJsonAtomic(manifestPath(out), manifest);
}

/** The study to go on with: the existing manifest when its settings are these, else a new one. */
export function openManifest(out: string, via: Via, settings: StudySettings, jobs: StudyJob[], skipped: SkippedJob[]): Manifest {
  const path = manifestPath(out);
  if (!existsSync(path)) return { version: 1, via, created: new Date().toISOString(), settings, skipped, jobs: jobs.map((job) => ({ ...job, attempts: [] })) };
  const manifest = readManifest(path);
  const differs = manifest.via !== via ? `it ran through ${manifest.via}, not ${via}` : JSON.stringify(manifest.settings) !== JSON.stringify(settings) ? 'its settings differ' : undefined;
  if (differs) {
    throw new BenchError(`${out} holds another study (${differs}: ${JSON.stringify(manifest.settings)}); give this one another --out, or run the sweep with the same options to go on with that one`);
  }
  return manifest;
}
