import assert from 'node:assert/strict';
import { nodeRingOrder, workerRing } from '../../src/cluster/ring-order.js';
import type { MemberInfo } from '../../src/rendezvous/protocol.js';

/** A gathered table: rank r on hosts[r], advertising the same name unless `addresses` says otherwise. */
function table(hosts: string[], addresses: string[] = hosts): MemberInfo[] {
  return hosts.map((host, rank) => ({ rank, host, address: addresses[rank]!, localRank: 0, pid: 100 + rank }));
}

describe('cluster/ring-order', () => {
  it('puts the ranks of each node side by side under srun\'s cyclic distribution, nodes in order of their first rank', () => {
    // srun -N 3 --ntasks-per-node=2 --distribution=cyclic: ranks dealt round-robin.
    const cyclic = table(['nid01', 'nid02', 'nid03', 'nid01', 'nid02', 'nid03']);
    assert.deepEqual(nodeRingOrder(cyclic), [0, 3, 1, 4, 2, 5]);
  });

  it('leaves block placement and one rank per node in rank order', () => {
    assert.deepEqual(nodeRingOrder(table(['a', 'a', 'b', 'b', 'c', 'c'])), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(nodeRingOrder(table(['a', 'b', 'c'])), [0, 1, 2]);
    assert.deepEqual(nodeRingOrder(table(['a'])), [0]);
  });

  it('keeps a node\'s ranks together when the scheduler placed them unevenly', () => {
    assert.deepEqual(nodeRingOrder(table(['b', 'a', 'b', 'c', 'a', 'b'])), [0, 2, 5, 1, 4, 3]);
  });

  it('groups by machine, then by the node a rank advertises (several slurmd on one machine)', () => {
    // The local test cluster: one machine "vm", Slurm nodes node1 and node2, cyclic.
    const emulated = table(['vm', 'vm', 'vm', 'vm'], ['node1', 'node2', 'node1', 'node2']);
    assert.deepEqual(nodeRingOrder(emulated), [0, 2, 1, 3]);
    // Under --iface each rank advertises an address of its own machine: the machine decides.
    const iface = table(['n1', 'n2', 'n1', 'n2'], ['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2']);
    assert.deepEqual(nodeRingOrder(iface), [0, 2, 1, 3]);
  });

  it('is the same ring whatever order the table comes in, and starts at the lowest rank', () => {
    const cyclic = table(['x', 'y', 'x', 'y', 'z', 'z']);
    const shuffled = [cyclic[3]!, cyclic[5]!, cyclic[0]!, cyclic[4]!, cyclic[1]!, cyclic[2]!];
    assert.deepEqual(nodeRingOrder(shuffled), nodeRingOrder(cyclic));
    assert.deepEqual(nodeRingOrder(cyclic), [0, 2, 1, 3, 4, 5]);
  });

  it('orders only the workers: the first numPs ranks serve, and the first worker leads the ring', () => {
    const cyclic = table(['p', 'q', 'r', 'p', 'q', 'r']);
    assert.deepEqual(workerRing(cyclic, 1), [1, 4, 2, 5, 3]);
    assert.deepEqual(workerRing(cyclic, 0), [0, 3, 1, 4, 2, 5]);
  });
});
