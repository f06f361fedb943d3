// Small shared pieces of the benchmarks: the error they fail with, the statistics they report,
// their argument checks and their CSV files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { execa } from 'execa';
import { assertPortFree, portFromJobId } from '../src/cluster/ports.js';
import { PortInUseError } from '../src/errors.js';

/** A benchmark run that did not produce trustworthy figures; the message says what came back. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The median, so that one slow repeat (a page cache miss, a busy core) does not move the figure. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Wall-clock milliseconds that compare across processes on one machine, at sub-millisecond resolution. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The last few lines of a child's output, to quote in an error. */
export function tail(text: string | undefined, lines = 15): string {
  const kept = (text ?? '').trimEnd().split('\n').slice(-lines);
  return kept.length && kept[0] !== '' ? kept.map((l) => `    ${l}`).join('\n') : '    (nothing)';
}

/** minimist's `unknown` hook for benchmarks: no option or argument it was not told about. */
export function rejectUnknown(arg: string): never {
  throw new BenchError(arg.startsWith('-') ? `unknown option "${arg}"; see --help` : `unexpected argument "${arg}"; see --help`);
}

export function parseCount(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new BenchError(`${flag} "${text}" is not a whole number in ${min}..${max}`);
  return value;
}

/** "2,4,8" -> [2, 4, 8], each once; "none" -> []. */
export function parseList(text: string, flag: string, min: number, max: number): number[] {
  if (text === 'none') return [];
  return [...new Set(text.split(',').map((item) => parseCount(item.trim(), flag, min, max)))];
}

/** Writes the rows as CSV with a header, making the folder if need be. */
export function writeCsv(path: string, columns: readonly string[], records: readonly Record<string, unknown>[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, stringify([...records], { header: true, columns: [...columns] }));
}

/** The first of `count` consecutive free ports in the block hpctrain would derive from `label`. */
export async function findFreePorts(label: string, count: number): Promise<number> {
  for (let attempt = 0; attempt < 32; attempt++) {
    const base = portFromJobId(`${label}#${attempt}`);
    try {
      for (let i = 0; i < count; i++) await assertPortFree(base + i, 'localhost', label, '--port');
      return base;
    } catch (error) {
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw new BenchError(`found no ${count} free ports for ${label} in 32 tries`);
}

/** Debian's Python, which the PyTorch peers run on. */
export const PEER_PYTHON = '/usr/bin/python3';

/** Why a Python peer cannot run here (`modules` do not import), or undefined when it can. */
export async function whyNoPythonPeer(modules: string): Promise<string | undefined> {
  const python = await execa(PEER_PYTHON, ['-c', `import ${modules}`], { reject: false, timeout: 60_000, stdin: 'ignore' });
  if (!python.failed) return undefined;
  const last = String(python.stderr ?? '').trim().split('\n').pop();
  return `${PEER_PYTHON} -c 'import ${modules}' failed: ${last || python.shortMessage}`;
}
