import assert from 'node:assert/strict';
import { buildClusterSpec, roleOf, tfConfigFor } from '../../src/cluster/cluster-spec.js';
import { assertPortFree, PORT_BLOCK, portFromJobId, servicePort } from '../../src/cluster/ports.js';
import { OptionsError, PortInUseError } from '../../src/errors.js';
import type { MemberInfo } from '../../src/rendezvous/protocol.js';
import { createServer } from 'node:net';
import { getFreePort } from '../helpers/ports.js';

// Ranks 3 and 4 share nid00004, as two GPUs of one node would.
const table: MemberInfo[] = [0, 1, 2, 3, 4].map((rank) => ({
  rank, host: `nid0000${Math.min(rank, 3) + 1}`, address: `nid0000${Math.min(rank, 3) + 1}`, localRank: rank === 4 ? 1 : 0, pid: 100 + rank,
}));

describe('cluster spec', () => {
  it('makes every rank a worker by default', () => {
    assert.deepEqual(buildClusterSpec(table, 0, 20000), {
      ps: [],
      worker: ['nid00001:20001', 'nid00002:20001', 'nid00003:20001', 'nid00004:20001', 'nid00004:20002'],
    });
  });

  it('puts parameter servers on the first K ranks, as on Blue Waters', () => {
    const spec = buildClusterSpec(table, 2, 30000);
    assert.deepEqual(spec, { ps: ['nid00001:30001', 'nid00002:30001'], worker: ['nid00003:30001', 'nid00004:30001', 'nid00004:30002'] });
    assert.deepEqual(roleOf(1, 2), { type: 'ps', index: 1 });
    assert.deepEqual(roleOf(4, 2), { type: 'worker', index: 2 });
    assert.deepEqual(tfConfigFor(spec, roleOf(3, 2)), { cluster: spec, task: { type: 'worker', index: 1 } });
  });

  it('leaves "ps" out of TF_CONFIG when there are none, as TensorFlow requires', () => {
    const spec = buildClusterSpec(table.slice(0, 2), 0, 20000);
    assert.deepEqual(tfConfigFor(spec, roleOf(0, 0)), { cluster: { worker: ['nid00001:20001', 'nid00002:20001'] }, task: { type: 'worker', index: 0 } });
  });

  it('gives ranks that share a machine their own ports, even when the scheduler calls them different nodes', () => {
    const emulated = ['node1', 'node2', 'node3'].map((address, rank) => ({ rank, host: 'vm', address, localRank: 0, pid: rank }));
    assert.deepEqual(buildClusterSpec(emulated, 0, 20000).worker, ['node1:20001', 'node2:20002', 'node3:20003']);
  });

  it('brackets IPv6 addresses', () => {
    const spec = buildClusterSpec([{ ...table[0]!, address: 'fe80::1' }], 0, 20000);
    assert.deepEqual(spec.worker, ['[fe80::1]:20001']);
  });

  it('refuses a spec with no workers', () => {
    assert.throws(() => buildClusterSpec(table, 5, 20000), (e: unknown) => e instanceof OptionsError && /--num-ps 5 leaves no worker among 5/.test(e.message));
  });
});

describe('ports', () => {
  it('derives a stable port block from the job id, below the ephemeral range', () => {
    assert.equal(portFromJobId('123456'), portFromJobId('123456'));
    assert.notEqual(portFromJobId('123456'), portFromJobId('123457'));
    for (let i = 0; i < 2000; i++) {
      const port = portFromJobId(`job${i}`);
      assert.ok(port >= 20000 && port + PORT_BLOCK - 1 < 32768 && (port - 20000) % PORT_BLOCK === 0, String(port));
    }
  });

  it('gives each local rank its own service port, up to the block size', () => {
    assert.equal(servicePort(20000, 0), 20001);
    assert.equal(servicePort(20000, 7), 20008);
    assert.throws(() => servicePort(20000, PORT_BLOCK - 1), OptionsError);
  });

  it('says which flag to change when a port is busy', async () => {
    const port = await getFreePort();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ port, host: '0.0.0.0' }, resolve));
    try {
      await assert.rejects(assertPortFree(port, 'nid00001', 'service port', '--port'), (e: unknown) => {
        assert.ok(e instanceof PortInUseError);
        assert.equal(e.message, `port ${port} (service port) is already in use on nid00001`);
        assert.match(e.hint!, /--port/);
        return true;
      });
    } finally {
      server.close();
    }
    await assertPortFree(await getFreePort(), 'nid00001', 'service port', '--port');
  });
});
