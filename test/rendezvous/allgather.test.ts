import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { PortInUseError, RendezvousClosedError, RendezvousConnectionError, RendezvousTimeoutError } from '../../src/errors.js';
import { rendezvous } from '../../src/rendezvous/allgather.js';
import { getFreePort } from '../helpers/ports.js';
import { closeAll, configFor, fulfilled, runRanks, type RankSetup } from '../helpers/ranks.js';

describe('rendezvous allgather over real ZeroMQ sockets', () => {
  let setup: RankSetup;
  beforeEach(async () => {
    setup = { jobId: `job-${Math.random()}`, size: 4, port: await getFreePort(), secret: 'test-secret-0123456789' };
  });

  it('gives every rank the same table, ordered by rank', async () => {
    const results = await runRanks(setup, [3, 0, 2, 1]);
    try {
      const tables = fulfilled(results).map((r) => r.table);
      for (const table of tables) assert.deepEqual(table, tables[0]);
      assert.deepEqual(tables[0]!.map((m) => m.rank), [0, 1, 2, 3]);
      assert.deepEqual(tables[0]![2], { rank: 2, host: 'node03', address: '10.0.0.3', localRank: 0, pid: 1002 });
    } finally {
      await closeAll(results);
    }
  });

  it('completes when members start long before rank 0', async () => {
    const members = runRanks(setup, [1, 2, 3]);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const coordinator = await runRanks(setup, [0]);
    const all = [...coordinator, ...(await members)];
    try {
      assert.equal(fulfilled(all).every((r) => r.table.length === 4), true);
    } finally {
      await closeAll(all);
    }
  });

  it('runs barriers, and names the rank that never arrives', async () => {
    const results = await runRanks({ ...setup, timeoutMs: 1500 }, [0, 1, 2, 3]);
    const ranks = fulfilled(results);
    try {
      await Promise.all(ranks.map((r) => r.barrier('first')));
      const outcomes = await Promise.allSettled(ranks.slice(0, 3).map((r) => r.barrier('second')));
      assert.ok(outcomes[0]!.status === 'rejected' && outcomes[0].reason instanceof RendezvousTimeoutError);
      assert.match((outcomes[0] as PromiseRejectedResult).reason.message, /barrier "second": rank 3 \(node04\) did not arrive/);
      for (const outcome of outcomes.slice(1)) {
        assert.ok(outcome.status === 'rejected' && outcome.reason instanceof RendezvousClosedError, String((outcome as PromiseRejectedResult).reason));
        assert.match(outcome.reason.message, /coordinator gave up: barrier "second": rank 3/);
      }
    } finally {
      await closeAll(results);
    }
  });

  it('times out naming every missing rank and its host, on rank 0 and on the members', async () => {
    const results = await runRanks({ ...setup, timeoutMs: 1000 }, [0, 2]);
    const [coordinator, member] = results;
    assert.ok(coordinator!.status === 'rejected' && coordinator.reason instanceof RendezvousTimeoutError);
    assert.match(coordinator.reason.message, /2 of 4 ranks did not join within 1 s: rank 1 \(node02\), rank 3 \(node04\)/);
    assert.match(coordinator.reason.hint ?? '', /--rendezvous-timeout/);
    assert.ok(member!.status === 'rejected' && member.reason instanceof RendezvousClosedError);
    assert.match(member.reason.message, /rank 2 \(node03\) stopped: the coordinator gave up: .*rank 1 \(node02\), rank 3 \(node04\)/);
  });

  it('names every missing rank on rank 0, and the first 20 in what it tells the members', async () => {
    const [coordinator, member] = await runRanks({ ...setup, size: 30, timeoutMs: 800 }, [0, 1]);
    assert.ok(coordinator!.status === 'rejected' && member!.status === 'rejected');
    assert.match(coordinator.reason.message, /28 of 30 ranks did not join within 0\.8 s: rank 2 \(node03\), .*, rank 29 \(node30\)$/);
    assert.match(member.reason.message, /: rank 2 \(node03\), .*, rank 21 \(node22\) and 8 more$/);
  });

  it('a member that cannot reach rank 0 names the coordinator address', async () => {
    const [outcome] = await runRanks({ ...setup, timeoutMs: 200 }, [1]);
    assert.ok(outcome!.status === 'rejected' && outcome.reason instanceof RendezvousConnectionError, String((outcome as PromiseRejectedResult).reason));
    assert.match(outcome.reason.message, new RegExp(`rank 1 \\(node02\\) could not reach the coordinator at 127\\.0\\.0\\.1:${setup.port}`));
  });

  it('a member with another secret is refused, and both sides say so', async () => {
    const logs: string[][] = [];
    // The stranger gives up while rank 0 still listens, so it can tell "refused" from "unreachable".
    const good = runRanks({ ...setup, timeoutMs: 2500 }, [0, 1, 2], logs);
    const stranger = runRanks({ ...setup, timeoutMs: 600, secret: 'another-secret-abcdef' }, [3], logs);
    const [results, [strangerResult]] = await Promise.all([good, stranger]);
    assert.ok(results[0]!.status === 'rejected' && results[0].reason instanceof RendezvousTimeoutError);
    assert.match(results[0].reason.message, /rank 3 \(node04\)/);
    assert.ok(logs[0]!.some((line) => /rejected a message from peer rank3-[0-9a-f]+: bad-mac: MAC does not verify/.test(line)), logs[0]!.join('\n'));
    assert.ok(strangerResult!.status === 'rejected' && strangerResult.reason instanceof RendezvousTimeoutError);
    assert.match(strangerResult.reason.message, /reached the coordinator .* but got no answer to its join/);
    assert.match(strangerResult.reason.hint ?? '', /HPCTRAIN_SECRET/);
  });

  it('a busy port is a PortInUseError that names --port', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen({ port: setup.port, host: '127.0.0.1' }, resolve));
    try {
      await assert.rejects(rendezvous(configFor(setup, 0)), (error: unknown) => {
        assert.ok(error instanceof PortInUseError);
        assert.match(error.message, new RegExp(`port ${setup.port} is already in use on rank 0 \\(node01\\)`));
        assert.match(error.hint!, /--port/);
        return true;
      });
    } finally {
      blocker.close();
    }
  });

  it('works without a secret (with the warning left to the caller)', async () => {
    const results = await runRanks({ ...setup, secret: undefined, size: 2 }, [0, 1]);
    try {
      assert.deepEqual(fulfilled(results)[1]!.table.map((m) => m.host), ['node01', 'node02']);
    } finally {
      await closeAll(results);
    }
  });
});
