// The ring allreduce and the broadcast on real ZeroMQ sockets between several transports (one per
// rank, in this process), and what the transport refuses: foreign keys, replays, a dead peer.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as zmq from 'zeromq';
import { Collectives } from '../../src/comm/collectives.js';
import { deriveCommKey, encodeHeader, senderKey, tagOf, type MessageHeader } from '../../src/comm/frames.js';
import type { Link } from '../../src/comm/group.js';
import { type Peer, Transport } from '../../src/comm/transport.js';
import { CommError } from '../../src/errors.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

const KEY = deriveCommKey('test secret', 'job-1');

async function openRing(size: number, options: { timeoutMs?: number; log?: (rank: number, line: string) => void } = {}): Promise<Transport[]> {
  const base = await getFreePortBlock(size);
  const peers: Peer[] = Array.from({ length: size }, (_, rank) => ({ rank, host: `node${rank}`, address: '127.0.0.1', port: base + rank }));
  return Promise.all(peers.map((peer) => Transport.open({
    rank: peer.rank, peers, key: KEY, timeoutMs: options.timeoutMs ?? 20_000, log: (line) => options.log?.(peer.rank, line),
  })));
}

async function closeAll(transports: Transport[]): Promise<void> {
  await Promise.all(transports.map((t) => t.close()));
}

function digest(data: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

describe('ring allreduce and broadcast', function () {
  this.timeout(60_000);

  for (const size of [2, 3, 4]) {
    it(`${size} ranks: every rank ends with the mean, the same bytes everywhere, for lengths that do not divide evenly`, async () => {
      const transports = await openRing(size);
      try {
        // 4-value pieces force many pieces per segment; 1 and 2 values leave some segments empty.
        const collectives = transports.map((t) => new Collectives(t, { pieceBytes: 16 }));
        for (const length of [1, 2, 7, 1000, 4099]) {
          const inputs = transports.map((_, rank) => randomFloats(seededRandom(length * 10 + rank), length));
          const buffers = inputs.map((values) => Float32Array.from(values));
          await Promise.all(collectives.map((c, rank) => c.allreduceMean(buffers[rank]!)));
          for (let i = 0; i < length; i++) {
            const mean = inputs.reduce((sum, values) => sum + values[i]!, 0) / size;
            assert.ok(Math.abs(buffers[0]![i]! - mean) <= 1e-6, `length ${length}, value ${i}: ${buffers[0]![i]} against ${mean}`);
          }
          assert.equal(new Set(buffers.map(digest)).size, 1, `length ${length}: replicas differ`);
        }
      } finally {
        await closeAll(transports);
      }
    });
  }

  it('runs the allreduce and the broadcasts along a given ring (a node\'s ranks side by side): messages go only to the next in the ring', async () => {
    const transports = await openRing(4);
    try {
      // srun's cyclic distribution on 2 nodes: ranks 0 and 2 on one, 1 and 3 on the other.
      const ring = [0, 2, 1, 3];
      const sent: string[] = [];
      const watched = transports.map((t): Link => ({
        rank: t.rank, size: t.size, receive: (from, address, options) => t.receive(from, address, options),
        send: (to, address, payload) => {
          sent.push(`${t.rank}->${to}`);
          return t.send(to, address, payload);
        },
      }));
      const collectives = watched.map((link) => new Collectives(link, { pieceBytes: 16, ring }));
      const inputs = transports.map((_, rank) => randomFloats(seededRandom(70 + rank), 1001));
      const buffers = inputs.map((values) => Float32Array.from(values));
      await Promise.all(collectives.map((c, rank) => c.allreduceMean(buffers[rank]!)));
      for (let i = 0; i < 1001; i++) {
        const mean = inputs.reduce((sum, values) => sum + values[i]!, 0) / 4;
        assert.ok(Math.abs(buffers[0]![i]! - mean) <= 1e-6, `value ${i}: ${buffers[0]![i]} against ${mean}`);
      }
      assert.equal(new Set(buffers.map(digest)).size, 1, 'replicas differ');
      for (const root of [0, 3]) {
        const weights = transports.map((_, rank) => (rank === root ? randomFloats(seededRandom(root), 99) : new Float32Array(99)));
        await Promise.all(collectives.map((c, rank) => c.broadcast(weights[rank]!, root)));
        assert.equal(new Set(weights.map(digest)).size, 1, `broadcast from ${root}`);
        assert.ok(weights[1]!.some((v) => v !== 0));
      }
      assert.deepEqual([...new Set(sent)].sort(), ['0->2', '1->3', '2->1', '3->0']);
      // The ranks keep their numbers: only the neighbours changed.
      assert.deepEqual(collectives.map((c) => c.rank), [0, 1, 2, 3]);
    } finally {
      await closeAll(transports);
    }
  });

  it('refuses a ring that is not an order of the ranks', () => {
    const link: Link = { rank: 0, size: 3, send: async () => {}, receive: async () => Buffer.alloc(0) };
    for (const ring of [[0, 1], [0, 1, 1], [0, 1, 3], [0, 1, 2, 2]]) {
      assert.throws(() => new Collectives(link, { ring }), /is not an order of the 3 ranks 0\.\.2/);
    }
    assert.doesNotThrow(() => new Collectives(link, { ring: [2, 0, 1] }));
  });

  it('adds counts exactly (float64, in rank order), and waits past --comm-timeout for a rank that is still at work', async () => {
    const transports = await openRing(3, { timeoutMs: 300 });
    try {
      const collectives = transports.map((t) => new Collectives(t));
      // 2^53 - 1 and 1: a float32 mean would lose both; the slowest rank arrives after 3 timeouts.
      const values = [Float64Array.of(2 ** 53 - 2, 0.5, 7), Float64Array.of(1, 0.25, 11), Float64Array.of(0, 0.125, 13)];
      const sums = await Promise.all(collectives.map(async (c, rank) => {
        if (rank === 2) await new Promise((resolve) => setTimeout(resolve, 1000));
        return c.sumExact(values[rank]!);
      }));
      for (const sum of sums) assert.deepEqual([...sum], [2 ** 53 - 1, 0.875, 31]);
      // An ordinary collective still gives up after the timeout.
      const late = collectives.map((c, rank) => (rank === 2 ? new Promise<void>((resolve) => setTimeout(resolve, 1500)).then(() => c.barrier()) : c.barrier()));
      await assert.rejects(late[0]!, CommError);
      await Promise.allSettled(late);
    } finally {
      await closeAll(transports);
    }
  });

  it('allreduces 24 MB in 4 MiB pieces, and broadcasts rank 0\'s values', async () => {
    const transports = await openRing(3);
    try {
      const collectives = transports.map((t) => new Collectives(t));
      const length = 6_000_000;
      const buffers = transports.map((_, rank) => new Float32Array(length).fill(rank + 1));
      await Promise.all(collectives.map((c, rank) => c.allreduceMean(buffers[rank]!)));
      for (const buffer of buffers) assert.ok(buffer.every((v) => v === 2));
      const weights = transports.map((_, rank) => (rank === 0 ? randomFloats(seededRandom(5), length) : new Float32Array(length)));
      await Promise.all(collectives.map((c, rank) => c.broadcast(weights[rank]!)));
      assert.equal(new Set(weights.map(digest)).size, 1);
    } finally {
      await closeAll(transports);
    }
  });

  it('drops messages under another key, replays and malformed frames, logs them, and still completes', async () => {
    const logged: string[] = [];
    const transports = await openRing(2, { log: (rank, line) => logged.push(`${rank}: ${line}`) });
    const intruder = new zmq.Push({ linger: 0 });
    try {
      intruder.connect(`tcp://127.0.0.1:${(transports[1] as unknown as { options: { peers: Peer[] } }).options.peers[1]!.port}`);
      const header: MessageHeader = { sender: 0, receiver: 1, counter: 0, op: 1, step: 0, piece: 0, payloadBytes: 8 };
      const headerBytes = encodeHeader(header);
      const payload = Buffer.from(new Float32Array([1e9, 1e9]).buffer);
      // Another job's key: the tag does not verify.
      await intruder.send([headerBytes, tagOf(senderKey(deriveCommKey('test secret', 'job-2'), 0), header, headerBytes, payload), payload]);
      // Garbage.
      await intruder.send([Buffer.from('not a header')]);
      const collectives = transports.map((t) => new Collectives(t));
      const buffers = [new Float32Array([1, 2]), new Float32Array([3, 4])];
      await Promise.all(collectives.map((c, rank) => c.allreduceMean(buffers[rank]!)));
      assert.deepEqual([...buffers[1]!], [2, 3]);
      // A genuine message of rank 0's, sent again: its counter is not new.
      const genuine: MessageHeader = { sender: 0, receiver: 1, counter: 0, op: 1, step: 0, piece: 0, payloadBytes: 8 };
      const genuineBytes = encodeHeader(genuine);
      await intruder.send([genuineBytes, tagOf(senderKey(KEY, 0), genuine, genuineBytes, payload), payload]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(transports[1]!.rejected, 3);
      assert.ok(logged.some((line) => /1: gradient exchange: dropped a message: bad tag \(claims rank 0\)/.test(line)), logged.join('\n'));
      assert.ok(logged.some((line) => /replayed message from rank 0/.test(line)), logged.join('\n'));
      assert.ok(logged.some((line) => /1 frames, expected 3/.test(line)), logged.join('\n'));
    } finally {
      intruder.close();
      await closeAll(transports);
    }
  });

  it('refuses a message of rank 0\'s to rank 1 replayed to rank 2, and keeps the genuine one that follows; a second message for a waiting address does not replace the first', async () => {
    const logged: string[] = [];
    const transports = await openRing(3, { log: (rank, line) => logged.push(`${rank}: ${line}`) });
    const intruder = new zmq.Push({ linger: 0 });
    const portOf = (rank: number) => (transports[rank] as unknown as { options: { peers: Peer[] } }).options.peers[rank]!.port;
    const seal = (header: MessageHeader, payload: Buffer): Buffer[] => {
      const bytes = encodeHeader(header);
      return [bytes, tagOf(senderKey(KEY, header.sender), header, bytes, payload), payload];
    };
    try {
      // What rank 0 sends rank 1 first (a piece of a parameter server's shard, say), as captured on the wire.
      const captured = seal({ sender: 0, receiver: 1, counter: 0, op: 7, step: 3, piece: 0, payloadBytes: 8 }, Buffer.from(new Float32Array([1e9, 1e9]).buffer));
      intruder.connect(`tcp://127.0.0.1:${portOf(2)}`);
      await intruder.send(captured);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(transports[2]!.rejected, 1);
      assert.ok(logged.some((line) => /2: gradient exchange: dropped a message: a message of rank 0's meant for rank 1, replayed here/.test(line)), logged.join('\n'));
      // Rank 0's own first message to rank 2 (counter 0 of that pair) still arrives: nothing was used up.
      const genuine = new Float32Array([5, 6]);
      await transports[0]!.send(2, { op: 7, step: 3, piece: 0 }, new Uint8Array(genuine.buffer));
      const received = await transports[2]!.receive(0, { op: 7, step: 3, piece: 0 });
      assert.deepEqual([...new Float32Array(received.buffer, received.byteOffset, 2)], [5, 6]);
      // Two messages from rank 0 for one address rank 1 has not asked for yet: the first stays.
      await transports[0]!.send(1, { op: 8, step: 0, piece: 0 }, new Uint8Array(new Float32Array([1, 1]).buffer));
      await transports[0]!.send(1, { op: 8, step: 0, piece: 0 }, new Uint8Array(new Float32Array([2, 2]).buffer));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const first = await transports[1]!.receive(0, { op: 8, step: 0, piece: 0 });
      assert.deepEqual([...new Float32Array(first.buffer, first.byteOffset, 2)], [1, 1]);
      assert.ok(logged.some((line) => /1: gradient exchange: dropped a message: a second message from rank 0 for op 8 step 0 piece 0; the first is kept/.test(line)), logged.join('\n'));
    } finally {
      intruder.close();
      await closeAll(transports);
    }
  });

  it('names a rank that never opened its port after the rendezvous (it died before), long before the receive timeout', async () => {
    const base = await getFreePortBlock(3);
    const peers: Peer[] = Array.from({ length: 3 }, (_, rank) => ({ rank, host: `node${rank}`, address: '127.0.0.1', port: base + rank }));
    // Ranks 0 and 1 open theirs; rank 2 never does.
    const transports = await Promise.all([0, 1].map((rank) => Transport.open({ rank, peers, key: KEY, timeoutMs: 600_000, handshakeTimeoutMs: 1500 })));
    try {
      const started = Date.now();
      const errors = await Promise.all(transports.map((t) => t.receive(2, { op: 1, step: 0, piece: 0 }).then(() => undefined, (e: unknown) => e)));
      for (const error of errors) {
        assert.ok(error instanceof CommError, String(error));
        assert.equal(error.rank, 2);
        assert.match(error.message, /cannot reach rank 2 \(node2\): it has not opened its gradient-exchange port \d+ in the 1\.5 s since the rendezvous/);
      }
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    } finally {
      await closeAll(transports);
    }
  });

  it('fails, naming the peer, when a message does not come within the timeout', async () => {
    const transports = await openRing(2, { timeoutMs: 1000 });
    try {
      // Rank 1 is alive but never joins the allreduce.
      const error = await new Collectives(transports[0]!).allreduceMean(new Float32Array(10)).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof CommError, String(error));
      assert.equal(error.rank, 1);
      assert.match(error.message, /rank 0 heard nothing from rank 1 \(node1\) for 1 s in the gradient exchange/);
    } finally {
      await closeAll(transports);
    }
  });
});
