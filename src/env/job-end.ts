// When the job ends: the scheduler's facts about its time limit, read once at the edge.
//   SLURM_JOB_END_TIME  the end, in seconds since the epoch (Slurm 23.02 and later)
//   HPCTRAIN_JOB_END    the same, set by slurm/train.slurm (from squeue's time left, on older
//                       Slurm) and pbs/train.pbs (from the walltime), or by hand
// And the text of squeue's %L (the time left), for a first worker under Slurm without either.
// (The batch scripts read SLURM_RESTART_COUNT and PBS_WALLTIME themselves.)
import { EnvironmentError } from '../errors.js';
import type { Env } from './types.js';

export interface JobEnd {
  /** ms since the epoch. */
  endsAt: number;
  /** Which fact told it: the variable's name, or "squeue". */
  source: string;
}

/** The end from the environment, or undefined when no variable tells it. */
export function readJobEnd(env: Env): JobEnd | undefined {
  for (const name of ['SLURM_JOB_END_TIME', 'HPCTRAIN_JOB_END']) {
    const text = env[name]?.trim();
    if (!text) continue;
    if (!/^\d+$/.test(text)) {
      throw new EnvironmentError(`${name}=${text} is not a time in whole seconds since the epoch`, `unset ${name}, or give e.g. ${name}=$(date -d '+2 hours' +%s)`);
    }
    const seconds = Number(text);
    // 0 is what Slurm's tools print for "no end" in some versions.
    if (seconds === 0) continue;
    return { endsAt: seconds * 1000, source: name };
  }
  return undefined;
}

/**
 * Seconds in a Slurm or PBS duration: "D-HH:MM:SS", "D-HH", "D-HH:MM", "HH:MM:SS", "MM:SS", "MM"
 * (Slurm's forms), or plain seconds as PBS_WALLTIME holds them when `plainSeconds` is set.
 * undefined for "UNLIMITED", "NOT_SET", "INVALID" and anything else that is not a duration.
 */
export function parseDuration(text: string, plainSeconds = false): number | undefined {
  const t = text.trim();
  if (plainSeconds && /^\d+$/.test(t)) return Number(t);
  const match = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!match) return undefined;
  const [, days, a, b, c] = match;
  const n = (s: string | undefined): number => (s === undefined ? 0 : Number(s));
  if (days !== undefined) return n(days) * 86400 + n(a) * 3600 + n(b) * 60 + n(c);
  if (c !== undefined) return n(a) * 3600 + n(b) * 60 + n(c);
  if (b !== undefined) return n(a) * 60 + n(b);
  return n(a) * 60;
}
