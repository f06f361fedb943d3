// The order of the workers around the allreduce ring: the ranks of one node side by side, so that
// each node has one ring link in and one out over the network and the rest stay inside the node.
// srun's cyclic distribution, or mpirun's --map-by node, would otherwise put every link between
// two nodes. Built only from the gathered table, so every rank computes the same ring.
import type { MemberInfo } from '../rendezvous/protocol.js';

/**
 * The members' ranks grouped by machine (host) and, within a machine, by the address each rank
 * advertises (the scheduler's node: several slurmd may share one machine); groups in the order of
 * their lowest rank, ranks ascending within a group. So the lowest rank stays first: the ring
 * starts at the first worker, which broadcasts the weights and keeps the records.
 */
export function nodeRingOrder(members: readonly MemberInfo[]): number[] {
  const byRank = [...members].sort((a, b) => a.rank - b.rank);
  const machineOf = firstRankBy(byRank, (m) => m.host);
  const nodeOf = firstRankBy(byRank, (m) => `${m.host} ${m.address}`);
  return byRank
    .sort((a, b) => machineOf(a) - machineOf(b) || nodeOf(a) - nodeOf(b) || a.rank - b.rank)
    .map((m) => m.rank);
}

/** The ring of the workers: every rank from numPs on (the first numPs are parameter servers). */
export function workerRing(table: readonly MemberInfo[], numPs: number): number[] {
  return nodeRingOrder(table.filter((m) => m.rank >= numPs));
}

/** For each member, the lowest rank that shares its key. */
function firstRankBy(byRank: readonly MemberInfo[], key: (m: MemberInfo) => string): (m: MemberInfo) => number {
  const first = new Map<string, number>();
  for (const member of byRank) if (!first.has(key(member))) first.set(key(member), member.rank);
  return (member) => first.get(key(member))!;
}
