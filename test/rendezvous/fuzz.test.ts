// Hostile and broken peers next to a real rendezvous: every bad message is refused and logged,
// and the real ranks still complete with the same table.
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { decodeMessage, encodeMessage, makeKeyring, newNonce, type Header, type RejectReason } from '../../src/rendezvous/protocol.js';
import { decodeTable } from '../../src/rendezvous/table.js';
import { rendezvous, type Rendezvous } from '../../src/rendezvous/allgather.js';
import { getFreePort } from '../helpers/ports.js';
import { configFor, type RankSetup } from '../helpers/ranks.js';
import { seededRandom } from '../helpers/random.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rendezvous under hostile and broken peers', function () {
  this.timeout(60_000);
  const sockets: zmq.Dealer[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  function rogue(port: number): zmq.Dealer {
    const socket = new zmq.Dealer({ linger: 0 });
    socket.connect(`tcp://127.0.0.1:${port}`);
    sockets.push(socket);
    return socket;
  }

  it('refuses random, truncated, oversized, forged, foreign, out-of-range, duplicate and replayed frames', async () => {
    const setup: RankSetup = { jobId: 'fuzz-job', size: 4, port: await getFreePort(), secret: 'fuzz-secret-0123456789', timeoutMs: 20_000 };
    const keyring = makeKeyring(setup.jobId, setup.secret);
    const random = seededRandom(20261121);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const joinFor = (rank: number, jobId = setup.jobId): Header => ({
      type: 'join', jobId, rank, nonce: newNonce(),
      member: { rank, host: `node0${rank + 1}`, address: '127.0.0.1', localRank: 0, pid: 7 },
    });
    const coordinatorLog: string[] = [];
    const first = [rendezvous(configFor(setup, 0, coordinatorLog)), rendezvous(configFor(setup, 1))];
    await sleep(300);

    const noise = [rogue(setup.port), rogue(setup.port), rogue(setup.port)];
    const send = (frames: Buffer[], i = 0) => noise[i % noise.length]!.send(frames);
    const valid = encodeMessage(keyring, joinFor(3));
    for (let i = 0; i < 300; i++) {
      const count = 1 + Math.floor(random() * 6);
      await send(Array.from({ length: count }, () => bytes(Math.floor(random() * 200))), i);
    }
    for (let f = 0; f < valid.length; f++) {
      await send(valid.slice(0, f));
      await send([...valid.slice(0, f), valid[f]!.subarray(0, Math.floor(valid[f]!.length / 2))]);
    }
    await send([valid[0]!, bytes(64 * 1024), valid[2]!, valid[3]!]);
    await send([valid[0]!, valid[1]!, valid[2]!, bytes(32)]);
    await send(encodeMessage(makeKeyring('other-job', setup.secret), joinFor(3, 'other-job')));
    await send(encodeMessage(keyring, joinFor(9)));
    await send(encodeMessage(keyring, joinFor(0)));
    await send(encodeMessage(keyring, joinFor(1)));
    // Far past ZeroMQ's message limit: the peer's connection is dropped before decoding.
    await rogue(setup.port).send([bytes(2 << 20)]);

    // Rank 2 is played by hand so that its exact join can be replayed from another connection.
    const rank2 = rogue(setup.port);
    const rank2Join = encodeMessage(keyring, joinFor(2));
    await rank2.send(rank2Join);
    await sleep(200);
    await send(rank2Join);
    const all = await Promise.all([...first, rendezvous(configFor(setup, 3))]);
    try {
      rank2.receiveTimeout = 5000;
      const reply = decodeMessage(keyring, await rank2.receive(), 1 << 20);
      assert.equal(reply.header.type, 'table');
      const gathered = decodeTable(reply.body, 4);
      const tables = [...all.map((r: Rendezvous) => r.table), gathered.members];
      for (const table of tables) assert.deepEqual(table, tables[0]);
      // Rank 0's session for this run reaches every rank, the hand-played one too.
      assert.match(gathered.session, /^[0-9a-f]{32}$/);
      for (const r of all) assert.equal(r.session, gathered.session);
      assert.deepEqual(tables[0]!.map((m) => m.host), ['node01', 'node02', 'node03', 'node04']);

      const counts = all[0]!.rejected.counts;
      const expected: RejectReason[] = ['malformed', 'oversized', 'bad-mac', 'foreign-job', 'bad-rank', 'duplicate-rank', 'replay'];
      for (const reason of expected) assert.ok((counts.get(reason) ?? 0) > 0, `no ${reason} in ${JSON.stringify([...counts])}`);
      assert.ok(all[0]!.rejected.size >= 300, `only ${all[0]!.rejected.size} rejected`);
      assert.ok(coordinatorLog.some((line) => /rejected a message from peer 0x[0-9a-f]+: /.test(line)), coordinatorLog.join('\n'));
      assert.ok(coordinatorLog.some((line) => /further rejected messages are counted/.test(line)));
    } finally {
      await Promise.all(all.map((r) => r.close()));
    }
    assert.ok(coordinatorLog.some((line) => /^rejected \d+ message\(s\) in all \(.*duplicate-rank: 1/.test(line)), coordinatorLog.join('\n'));
  });
});
