// Refused messages are logged, but a flood of them (a port scanner, a confused job on the same
// port) must not drown the job's output: the first few are logged in full, the rest counted.
import type { RejectReason } from './protocol.js';

const LOGGED_IN_FULL = 10;

export class RejectLog {
  readonly counts = new Map<RejectReason, number>();
  private total = 0;

  constructor(private readonly log: (line: string) => void) {}

  record(reason: RejectReason, detail: string, from: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.total++;
    if (this.total <= LOGGED_IN_FULL) this.log(`rejected a message from ${from}: ${reason}: ${detail}`);
    if (this.total === LOGGED_IN_FULL) this.log('further rejected messages are counted, not logged');
  }

  get size(): number {
    return this.total;
  }

  summary(): string | undefined {
    if (this.total === 0) return undefined;
    const parts = [...this.counts].map(([reason, n]) => `${reason}: ${n}`);
    return `rejected ${this.total} message(s) in all (${parts.join(', ')})`;
  }
}
