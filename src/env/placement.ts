// Where each rank runs when the launcher does not say, and what that makes of its local rank: the
// layouts srun, aprun, mpirun and mpiexec produce, as plain functions of the node list.

/** Where srun puts each rank: block (the default) fills a node before the next; cyclic deals round-robin. */
export function placeRanks(hosts: readonly string[], tasksPerNode: readonly number[], size: number, cyclic: boolean): string[] {
  const placed: string[] = [];
  if (cyclic) {
    const left = [...tasksPerNode];
    while (placed.length < size && left.some((n) => n > 0)) {
      hosts.forEach((host, i) => {
        if (left[i]! > 0 && placed.length < size) {
          placed.push(host);
          left[i]!--;
        }
      });
    }
  } else {
    hosts.forEach((host, i) => {
      for (let t = 0; t < tasksPerNode[i]! && placed.length < size; t++) placed.push(host);
    });
  }
  // More ranks than slots (overcommit): wrap around so every rank still names a node.
  for (let r = placed.length; r < size; r++) placed.push(hosts[r % hosts.length]!);
  return placed;
}

export interface LocalPlace {
  /** This rank's place among the ranks of its node, in rank order. */
  localRank: number;
  /** How many ranks its node runs. */
  localSize: number;
}

/** A rank's local rank and its node's rank count, from where every rank was placed. */
export function localPlaceOf(rankHosts: readonly string[], rank: number): LocalPlace {
  const host = rankHosts[rank];
  let localRank = 0;
  let localSize = 0;
  rankHosts.forEach((other, r) => {
    if (other !== host) return;
    if (r < rank) localRank++;
    localSize++;
  });
  return { localRank, localSize };
}
