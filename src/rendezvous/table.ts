// The gathered table travels as columns, with host names and addresses in Slurm hostlist form:
// for 4096 ranks named nid00001..nid04096 the host column is 16 bytes, not 40 KB, which keeps the
// size-times-size bytes of an allgather small. Rank 0 adds the run's session: random bytes, fresh
// for every run (a requeued job's too), from which the gradient plane's key is derived.
import { compressHostlist, expandHostlist } from '../env/hostlist.js';
import { ProtocolReject, type MemberInfo } from './protocol.js';

interface TableColumns {
  session: string;
  hosts: string;
  addresses: string;
  localRanks: number[];
  pids: number[];
}

export interface GatheredTable {
  members: MemberInfo[];
  /** 32 hex digits from rank 0. */
  session: string;
}

export function encodeTable(members: readonly MemberInfo[], session: string): Buffer {
  const columns: TableColumns = {
    session,
    hosts: compressHostlist(members.map((m) => m.host)),
    addresses: compressHostlist(members.map((m) => m.address)),
    localRanks: members.map((m) => m.localRank),
    pids: members.map((m) => m.pid),
  };
  return Buffer.from(JSON.stringify(columns));
}

export function decodeTable(body: Buffer, size: number): GatheredTable {
  let columns: TableColumns;
  let hosts: string[];
  let addresses: string[];
  try {
    columns = JSON.parse(body.toString('utf8')) as TableColumns;
    hosts = expandHostlist(columns.hosts);
    // On Cray and Slurm the addresses are the node names: share those strings, don't build them twice.
    addresses = columns.addresses === columns.hosts ? hosts : expandHostlist(columns.addresses);
  } catch (error) {
    throw new ProtocolReject('malformed', `table does not parse: ${(error as Error).message}`);
  }
  const lengths = [hosts.length, addresses.length, columns.localRanks?.length, columns.pids?.length];
  if (lengths.some((n) => n !== size)) throw new ProtocolReject('malformed', `table columns of ${lengths.join('/')} rows, expected ${size}`);
  if (typeof columns.session !== 'string' || !/^[0-9a-f]{32}$/.test(columns.session)) throw new ProtocolReject('malformed', 'table without a session');
  const members = hosts.map((host, rank) => ({ rank, host, address: addresses[rank]!, localRank: columns.localRanks[rank]!, pid: columns.pids[rank]! }));
  return { members, session: columns.session };
}
