// The options collect, plot and predict share: the study's folder (--out), collect's CSV (--csv)
// and --help, besides their own.
import { join, resolve } from 'node:path';
import minimist from 'minimist';
import { rejectUnknown } from '../figures.js';

export const DEFAULT_OUT = 'bench/results/scaling';

export interface StudyArgs {
  args: minimist.ParsedArgs;
  /** The study's folder. */
  out: string;
  /** collect's CSV: --csv, else DIR/scaling.csv. */
  csv: string;
}

/** The parsed options, or undefined when --help was asked for (and printed). */
export function parseStudyArgs(argv: string[], help: string, strings: readonly string[] = []): StudyArgs | undefined {
  const args = minimist(argv, { string: ['out', 'csv', ...strings], boolean: ['help'], alias: { h: 'help' }, unknown: rejectUnknown });
  if (args.help) {
    process.stdout.write(help);
    return undefined;
  }
  const out = resolve(args.out ?? DEFAULT_OUT);
  return { args, out, csv: resolve(args.csv ?? join(out, 'scaling.csv')) };
}
