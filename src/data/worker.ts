// The decode worker thread: takes DecodeTasks from the pool one at a time and posts back a
// DecodeResult for each. sharp.concurrency(1): libvips then uses one thread per operation, so N
// worker threads keep about N cores busy (libvips's setting is process-wide, and no other
// thread of a training process decodes). Its operation cache is off: no image is seen twice.
// Decodes run on libuv's thread pool, which has UV_THREADPOOL_SIZE threads (default 4) shared by
// every worker thread: set it to at least the number of decode threads.

import { parentPort, type MessagePort } from 'node:worker_threads';
import sharp from 'sharp';
import { runDecodeTask } from './decode.js';
import type { DecodeTask } from './types.js';

sharp.concurrency(1);
sharp.cache(false);

if (parentPort === null) throw new Error('src/data/worker.js runs as a worker thread of the input pipeline');
const port: MessagePort = parentPort;

const queue: DecodeTask[] = [];
let running = false;

port.on('message', (task: DecodeTask) => {
  queue.push(task);
  if (!running) void drain();
});

async function drain(): Promise<void> {
  running = true;
  for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
    port.postMessage(await runDecodeTask(task));
  }
  running = false;
}
