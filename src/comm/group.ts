// What the collectives need of the network: numbered ranks that send and receive addressed
// messages. The transport is one; a group of some of its ranks is another, so that the workers
// of a parameter-server job can run collectives (evaluation, the closing barrier) among
// themselves once the servers have left.
import type { MessageAddress } from './frames.js';

export interface ReceiveOptions {
  /** No deadline (--comm-timeout): the peer is known to be working, and a dead one is still found by its connection. */
  patient?: boolean;
}

export interface Link {
  readonly rank: number;
  readonly size: number;
  send(to: number, address: MessageAddress, payload: Uint8Array): Promise<void>;
  receive(from: number, address: MessageAddress, options?: ReceiveOptions): Promise<Buffer>;
}

/** The ranks `members` of `link`, renumbered 0..members.length-1 in that order; this rank must be one. */
export function subgroup(link: Link, members: readonly number[]): Link {
  const rank = members.indexOf(link.rank);
  if (rank < 0) throw new Error(`rank ${link.rank} is not in the group ${members.join(',')}`);
  const global = (member: number): number => {
    const value = members[member];
    if (value === undefined) throw new Error(`no member ${member} in a group of ${members.length}`);
    return value;
  };
  return {
    rank,
    size: members.length,
    send: (to, address, payload) => link.send(global(to), address, payload),
    receive: (from, address, options) => link.receive(global(from), address, options),
  };
}
