// The checkpoint writer's thread: writeCheckpoint (hashing and writing in pieces) off the training
// thread, whose steps hold it for hundreds of milliseconds at a time. On the training thread a
// 300 MB checkpoint moved one piece per free moment and took many steps to reach the disk.
import { parentPort } from 'node:worker_threads';
import { writeCheckpoint, type CheckpointState } from './checkpoint.js';

export interface WriteRequest {
  id: number;
  dir: string;
  state: CheckpointState;
  keep: number;
}

export type WriteReply = { id: number; path: string } | { id: number; error: { name: string; message: string; hint?: string } };

parentPort!.on('message', (request: WriteRequest) => {
  writeCheckpoint(request.dir, request.state, { keep: request.keep }).then(
    (path) => parentPort!.postMessage({ id: request.id, path } satisfies WriteReply),
    (error: Error & { hint?: string }) => parentPort!.postMessage({ id: request.id, error: { name: error.name, message: error.message, hint: error.hint } } satisfies WriteReply),
  );
});
