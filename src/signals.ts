// The signals a scheduler sends ahead of the end: Slurm's --signal (SIGUSR1 by default here),
// SIGTERM at the time limit, on preemption and on scontrol requeue, then SIGKILL after KillWait
// (30 s by default). cli.ts opens one latch for the whole process before it loads a command, so
// that a signal that comes early (during the rendezvous, while the model is built) is kept, not
// lost, and so that SIGUSR1 never reaches Node.js's default, which opens the inspector's port.
// A command that can stop cleanly claims the signals; until one does, they end the process as
// their default would (status 128 + the signal's number).
import { constants } from 'node:os';

export type SignalName = 'SIGTERM' | 'SIGUSR1' | 'SIGUSR2' | 'SIGINT';

/** The signals that cli.ts listens for from the start. */
export const LATCHED_SIGNALS: readonly SignalName[] = ['SIGUSR1', 'SIGUSR2'];

/** What the latch needs of a process: Node's own, or a fake one in a test. */
export interface SignalTarget {
  on(signal: SignalName, listener: () => void): unknown;
  off(signal: SignalName, listener: () => void): unknown;
}

export class SignalLatch {
  private readonly claimed = new Set<SignalName>();
  private readonly received: SignalName[] = [];
  private readonly listeners = new Map<SignalName, () => void>();
  private readonly watchers = new Set<(signal: SignalName) => void>();

  constructor(
    private readonly target: SignalTarget,
    /** An unclaimed signal's default: e.g. exit with 128 + its number. */
    private readonly unclaimed: (signal: SignalName) => void,
  ) {}

  /** Listen for these signals from now on (unclaimed ones still end the process). */
  listen(signals: readonly SignalName[]): void {
    for (const signal of signals) {
      if (this.listeners.has(signal)) continue;
      const listener = (): void => this.deliver(signal);
      this.listeners.set(signal, listener);
      this.target.on(signal, listener);
    }
  }

  /**
   * A command that stops cleanly takes these signals: from now on they are only recorded (and
   * reported to watchers). Returns the first of them that came before, if any was kept.
   */
  claim(signals: readonly SignalName[]): SignalName | undefined {
    this.listen(signals);
    for (const signal of signals) this.claimed.add(signal);
    return this.first(signals);
  }

  /** The first of these signals received since the latch opened, or undefined. */
  first(signals: readonly SignalName[]): SignalName | undefined {
    return this.received.find((s) => signals.includes(s));
  }

  /** Called with each claimed signal as it comes; returns a function that stops the calls. */
  watch(watcher: (signal: SignalName) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** Stops listening: the signals get their defaults again. */
  close(): void {
    for (const [signal, listener] of this.listeners) this.target.off(signal, listener);
    this.listeners.clear();
  }

  private deliver(signal: SignalName): void {
    this.received.push(signal);
    if (!this.claimed.has(signal)) {
      this.unclaimed(signal);
      return;
    }
    for (const watcher of this.watchers) watcher(signal);
  }
}

/** A signal's number, e.g. 10 for SIGUSR1 on Linux (exit statuses are 128 + it). */
export function signalNumber(signal: string | undefined): number {
  return constants.signals[signal as NodeJS.Signals] ?? 1;
}

/** Parses --requeue-signal: USR1, sigusr2, SIGUSR1, ...; undefined for any other signal. */
export function parseSignalName(text: string): SignalName | undefined {
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return name === 'SIGUSR1' || name === 'SIGUSR2' ? name : undefined;
}
