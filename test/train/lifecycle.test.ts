// The stop decisions, with a literal clock: a signal, and the job's end against the measured step
// and checkpoint times; and the signal latch with a fake process.
import assert from 'node:assert/strict';
import { RunLifecycle } from '../../src/train/lifecycle.js';
import { SignalLatch, parseSignalName, type SignalName, type SignalTarget } from '../../src/signals.js';

function lifecycleAt(clock: { now: number }, endsAt: number | undefined, signal?: string): RunLifecycle {
  return new RunLifecycle({ endsAt, endSource: 'SLURM_JOB_END_TIME', marginMs: 60_000, checkpointGuessMs: 30_000, signal, now: () => clock.now });
}

describe('RunLifecycle', () => {
  it('wishes to stop on a signal, whatever the time', () => {
    const clock = { now: 0 };
    const lifecycle = lifecycleAt(clock, undefined);
    assert.equal(lifecycle.wish(), undefined);
    lifecycle.notify('SIGUSR1');
    lifecycle.notify('SIGTERM');
    assert.deepEqual(lifecycle.wish(), { reason: 'SIGUSR1' });
    assert.deepEqual(lifecycleAt(clock, undefined, 'SIGTERM').wish(), { reason: 'SIGTERM' });
  });

  it('wishes to stop when 2 of the slowest recent steps, the checkpoint and the margin no longer fit before the end', () => {
    const clock = { now: 1_000_000 };
    const end = clock.now + 200_000;
    const lifecycle = lifecycleAt(clock, end);
    // Before any step: 0 + the guessed 30 s checkpoint + 60 s margin = 90 s needed, 200 s left.
    assert.equal(lifecycle.neededMs(), 90_000);
    assert.equal(lifecycle.wish(), undefined);
    for (const ms of [10_000, 20_000, 15_000]) lifecycle.stepTook(ms);
    lifecycle.checkpointTook(5_000);
    // 2 x 20 s + 5 s + 60 s = 105 s.
    assert.equal(lifecycle.neededMs(), 105_000);
    clock.now = end - 105_001;
    assert.equal(lifecycle.wish(), undefined);
    clock.now = end - 105_000;
    assert.match(lifecycle.wish()?.reason ?? '', /^the job's end \(SLURM_JOB_END_TIME\) at 1970-01-01T00:20:00\.000Z is 105 s away, and .* need 105 s$/);
  });

  it('forgets the slow steps of long ago: the estimate is the slowest of the last 8', () => {
    const lifecycle = lifecycleAt({ now: 0 }, undefined);
    lifecycle.stepTook(50_000);
    for (let i = 0; i < 8; i++) lifecycle.stepTook(1_000 + i);
    assert.equal(lifecycle.expectedStepMs(), 1_007);
  });
});

class FakeProcess implements SignalTarget {
  readonly listeners = new Map<SignalName, Set<() => void>>();
  on(signal: SignalName, listener: () => void): void {
    if (!this.listeners.has(signal)) this.listeners.set(signal, new Set());
    this.listeners.get(signal)!.add(listener);
  }
  off(signal: SignalName, listener: () => void): void {
    this.listeners.get(signal)?.delete(listener);
  }
  send(signal: SignalName): void {
    for (const listener of this.listeners.get(signal) ?? []) listener();
  }
}

describe('SignalLatch', () => {
  it('keeps a signal that came before the command claimed it, and reports the later ones to watchers', () => {
    const target = new FakeProcess();
    const defaults: SignalName[] = [];
    const latch = new SignalLatch(target, (signal) => defaults.push(signal));
    latch.listen(['SIGUSR1', 'SIGUSR2']);
    target.send('SIGUSR1');
    // Unclaimed: its default runs (cli.ts exits), and it is remembered for a claim that comes later.
    assert.deepEqual(defaults, ['SIGUSR1']);
    assert.equal(latch.claim(['SIGUSR1', 'SIGTERM']), 'SIGUSR1');
    const seen: SignalName[] = [];
    const unwatch = latch.watch((signal) => seen.push(signal));
    target.send('SIGTERM');
    target.send('SIGUSR2');
    assert.deepEqual(seen, ['SIGTERM']);
    assert.deepEqual(defaults, ['SIGUSR1', 'SIGUSR2']);
    unwatch();
    target.send('SIGTERM');
    assert.deepEqual(seen, ['SIGTERM']);
    latch.close();
    assert.equal([...target.listeners.values()].reduce((n, set) => n + set.size, 0), 0);
  });

  it('reads --requeue-signal with or without SIG, in either case', () => {
    assert.equal(parseSignalName('usr2'), 'SIGUSR2');
    assert.equal(parseSignalName('SIGUSR1'), 'SIGUSR1');
    assert.equal(parseSignalName('HUP'), undefined);
  });
});
