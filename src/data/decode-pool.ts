// A pool of decode worker threads. Decoding and the float conversion run off the main thread, so
// the training step (and the main thread's event loop) never waits on JPEGs. Tasks are served
// first in, first out; each thread holds at most two, one running and one waiting, so it never
// idles for a message round trip and a thread's tasks never overtake the queue by much.

import { Worker } from 'node:worker_threads';
import { DataError } from '../errors.js';
import type { DecodeResult, DecodeTask } from './types.js';

const TASKS_PER_THREAD = 2;

/** Tasks that belong together (one epoch's) and can be dropped together. */
export type TaskGroup = object;

interface Pending {
  task: DecodeTask;
  group: TaskGroup;
  resolve: (result: DecodeResult) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  running: Map<number, Pending>;
  /** Called when `running` empties, while the pool closes. */
  onIdle?: () => void;
}

/** A run's queued tasks were dropped because the run was abandoned or the pool closed. */
export class TaskCancelledError extends Error {
  override readonly name = 'TaskCancelledError';
}

export class DecodePool {
  readonly threads: number;
  private readonly pool: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private failure: DataError | undefined;
  private closing = false;

  private constructor(threads: number) {
    this.threads = threads;
    const url = new URL('./worker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      const thread: Thread = { worker: new Worker(url), running: new Map() };
      thread.worker.on('message', (result: DecodeResult) => this.settle(thread, result));
      thread.worker.on('error', (error) => this.fail(`decode thread ${i} failed: ${error.message}`, error));
      thread.worker.on('exit', (code) => {
        if (!this.closing) this.fail(`decode thread ${i} exited (status ${code})`);
      });
      // Idle threads must not keep the process alive; busy ones must (see settle).
      thread.worker.unref();
      this.pool.push(thread);
    }
  }

  /**
   * Starts `threads` decode threads. On glibc, sharp must be loaded by the main thread before any
   * worker loads it, or its libraries are unloaded when a worker ends (lovell/sharp#2263).
   */
  static async start(threads: number): Promise<DecodePool> {
    await import('sharp');
    return new DecodePool(threads);
  }

  run(task: Omit<DecodeTask, 'id'>, group: TaskGroup): Promise<DecodeResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new TaskCancelledError('the decode pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { ...task, id: this.nextId++ }, group, resolve, reject });
      this.dispatch();
    });
  }

  /** Drops the group's queued tasks (they reject with TaskCancelledError); running ones finish. */
  cancel(group: TaskGroup): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const pending = this.queue[i]!;
      if (pending.group !== group) continue;
      this.queue.splice(i, 1);
      pending.reject(new TaskCancelledError('the batch was abandoned'));
    }
  }

  /** Waits for running tasks, then ends the threads: ending one inside sharp can crash the process. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const pending of this.queue.splice(0)) pending.reject(new TaskCancelledError('the decode pool is closed'));
    await Promise.all(
      this.pool.map(async (thread) => {
        if (thread.running.size > 0) await new Promise<void>((resolve) => (thread.onIdle = resolve));
        await thread.worker.terminate();
      }),
    );
  }

  private dispatch(): void {
    for (const thread of this.pool) {
      while (thread.running.size < TASKS_PER_THREAD && this.queue.length > 0) {
        const pending = this.queue.shift()!;
        thread.running.set(pending.task.id, pending);
        thread.worker.ref();
        thread.worker.postMessage(pending.task);
      }
    }
  }

  private settle(thread: Thread, result: DecodeResult): void {
    const pending = thread.running.get(result.id);
    if (!pending) return;
    thread.running.delete(result.id);
    if (thread.running.size === 0) {
      thread.worker.unref();
      thread.onIdle?.();
    }
    pending.resolve(result);
    this.dispatch();
  }

  private fail(message: string, cause?: unknown): void {
    if (this.failure) return;
    this.failure = new DataError(message, { cause, hint: 'this is a bug in hpctrain; please report it with the message above' });
    for (const thread of this.pool) {
      for (const pending of thread.running.values()) pending.reject(this.failure);
      thread.running.clear();
      thread.onIdle?.();
    }
    for (const pending of this.queue.splice(0)) pending.reject(this.failure);
  }
}
