// Runs the built CLI as a real process, as a user would.
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface CliOptions {
  env?: Record<string, string>;
  /** false: the process sees only `env`, as on a node where nothing else is set. */
  extendEnv?: boolean;
  /** Kill the process after this long; 120 s by default. */
  timeoutMs?: number;
}

export function runCli(args: string[], options: CliOptions = {}) {
  // A test's SIGTERM is the signal under test: SIGKILL only 60 s after it (execa's default, 5 s, cut a loaded stop short).
  return execa(process.execPath, [CLI, ...args], {
    reject: false, timeout: options.timeoutMs ?? 120_000, env: options.env ?? {}, extendEnv: options.extendEnv ?? true, forceKillAfterDelay: 60_000,
  });
}

export interface RankLine {
  rank: number;
  size: number;
  fields: Record<string, string>;
}

/** The "rendezvous rank=..." lines every rank prints, wherever a launcher put them in its output. */
export function parseRankLines(stdout: string): RankLine[] {
  return stdout.split('\n').flatMap((line) => {
    const at = line.indexOf('rendezvous rank=');
    if (at < 0) return [];
    const fields = Object.fromEntries(line.slice(at + 'rendezvous '.length).trim().split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));
    return [{ rank: Number(fields.rank), size: Number(fields.size), fields }];
  });
}

/** What rank 0 of `hpctrain rendezvous` prints as JSON. */
export interface SpecDocument {
  size: number;
  table: { rank: number; host: string; address: string; localRank: number }[];
  cluster: { ps: string[]; worker: string[] };
  tfConfig: unknown[];
  ring: number[];
  jobId: string;
}

/** Rank 0's JSON document: the one line that parses as an object with a "cluster" key. */
export function parseSpecDocument(stdout: string): SpecDocument {
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('{"jobId"');
    if (at >= 0) return JSON.parse(line.slice(at));
  }
  throw new Error(`no cluster spec JSON in:\n${stdout}`);
}
