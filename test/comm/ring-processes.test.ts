// The ring allreduce between real processes, and what happens when one of them is killed or
// stopped mid-run: every other rank exits non-zero, naming the lost rank and its host.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { getFreePortBlock } from '../helpers/ports.js';

const WORKER = fileURLToPath(new URL('./ring-worker.js', import.meta.url));

function startRing(size: number, basePort: number, length: number, rounds: number): ResultPromise[] {
  return Array.from({ length: size }, (_, rank) => execa('node', [WORKER, String(rank), String(size), String(basePort), String(length), String(rounds)], { reject: false, all: true }));
}

/** Resolves once every rank has printed `round 1`. */
async function firstRoundDone(ranks: ResultPromise[]): Promise<void> {
  await Promise.all(ranks.map((child) => new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('round 1 ')) resolve();
    });
  })));
}

describe('ring allreduce between processes', function () {
  this.timeout(90_000);

  it('3 processes end every round with the same bytes and exit 0', async () => {
    const results = await Promise.all(startRing(3, await getFreePortBlock(3), 1_000_000, 3));
    for (const result of results) assert.equal(result.exitCode, 0, String(result.all));
    const digests = results.map((r) => String(r.stdout));
    assert.equal(digests[0]!.split('\n').length, 3);
    assert.equal(new Set(digests).size, 1);
  });

  it('when a rank is killed, every other rank exits 1 within 30 s, naming it and its host', async () => {
    const ranks = startRing(4, await getFreePortBlock(4), 200_000, 0);
    await firstRoundDone(ranks);
    const killedAt = Date.now();
    ranks[2]!.kill('SIGKILL');
    const results = await Promise.all(ranks);
    // Each rank sees the dropped connection itself, or hears of it from the first that did.
    for (const rank of [0, 1, 3]) {
      assert.equal(results[rank]!.exitCode, 1, String(results[rank]!.all));
      assert.match(String(results[rank]!.stderr), /error: (rank \d aborted the job: )?rank \d lost rank 2 \(node2\): its connection dropped/);
    }
    assert.ok(Date.now() - killedAt < 30_000, `took ${Date.now() - killedAt} ms`);
  });

  it('when a rank hangs (SIGSTOP), every other rank exits 1 within 30 s, naming it', async () => {
    const ranks = startRing(3, await getFreePortBlock(3), 200_000, 0);
    await firstRoundDone(ranks);
    const stoppedAt = Date.now();
    ranks[1]!.kill('SIGSTOP');
    try {
      const results = await Promise.all([ranks[0]!, ranks[2]!]);
      for (const result of results) {
        assert.equal(result.exitCode, 1, String(result.all));
        assert.match(String(result.stderr), /rank 1 \(node1\)/);
      }
      assert.ok(Date.now() - stoppedAt < 30_000, `took ${Date.now() - stoppedAt} ms`);
    } finally {
      ranks[1]!.kill('SIGKILL');
      await ranks[1];
    }
  });
});
