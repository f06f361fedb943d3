// Small shared pieces of the benchmarks: the error they fail with, and the statistics they report.

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
