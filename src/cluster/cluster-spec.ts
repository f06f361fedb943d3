// The cluster spec every rank agrees on, in TensorFlow's shape: {ps: [...], worker: [...]} plus
// each task's role. Built only from the gathered table, so every rank computes the same one.
import { OptionsError } from '../errors.js';
import type { MemberInfo } from '../rendezvous/protocol.js';
import { servicePort } from './ports.js';

export interface ClusterSpec {
  ps: string[];
  worker: string[];
}

export type TaskType = 'ps' | 'worker';

export interface TaskRole {
  type: TaskType;
  index: number;
}

/** The TF_CONFIG environment variable TensorFlow's distribution strategies read. */
export interface TfConfig {
  cluster: Partial<ClusterSpec>;
  task: TaskRole;
}

/** Rank r's role: the first numPs ranks are parameter servers (the Blue Waters layout), the rest workers. */
export function roleOf(rank: number, numPs: number): TaskRole {
  return rank < numPs ? { type: 'ps', index: rank } : { type: 'worker', index: rank - numPs };
}

export function validateNumPs(numPs: number, size: number): void {
  if (numPs >= size) {
    throw new OptionsError(`--num-ps ${numPs} leaves no worker among ${size} rank(s)`, `use at most ${size - 1} parameter servers, or start more ranks`);
  }
}

export function buildClusterSpec(table: readonly MemberInfo[], numPs: number, basePort: number): ClusterSpec {
  validateNumPs(numPs, table.length);
  const spec: ClusterSpec = { ps: [], worker: [] };
  const ports = servicePorts(table, basePort);
  for (const member of table) {
    spec[roleOf(member.rank, numPs).type].push(formatHostPort(member.address, ports[member.rank]!));
  }
  return spec;
}

/**
 * Each rank's service port: ranks that share a machine (same host name in the gathered table)
 * get consecutive ports. This is the local rank on an ordinary cluster, and stays right where the
 * scheduler's idea of a node is not a machine (several slurmd daemons on one host).
 */
export function servicePorts(table: readonly MemberInfo[], basePort: number): number[] {
  const perHost = new Map<string, number>();
  return table.map((member) => {
    const slot = perHost.get(member.host) ?? 0;
    perHost.set(member.host, slot + 1);
    return servicePort(basePort, slot);
  });
}

export function tfConfigFor(spec: ClusterSpec, role: TaskRole): TfConfig {
  // TensorFlow rejects an empty job list, so a spec without parameter servers omits "ps".
  const cluster: Partial<ClusterSpec> = spec.ps.length > 0 ? spec : { worker: spec.worker };
  return { cluster, task: role };
}

function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
