// MPI-style allgather over ZeroMQ: rank 0 (the coordinator) binds a ROUTER, every other rank
// connects a DEALER and sends its MemberInfo; once all `size` ranks have joined, each receives
// the same ordered table (the semantics of mpi4py's comm.allgather). The same connections then
// carry barriers.
import * as zmq from 'zeromq';
import { describeRank, PortInUseError, RendezvousClosedError, RendezvousConnectionError, RendezvousTimeoutError } from '../errors.js';
import { probeTcp, resolveHost, tcpEndpoint } from './address.js';
import {
  decodeMessage, encodeMessage, makeKeyring, MAX_HEADER_BYTES, MAX_TABLE_BYTES, newNonce, ProtocolReject,
  type Header, type Keyring, type MemberInfo,
} from './protocol.js';
import { RejectLog } from './reject-log.js';
import { decodeTable, encodeTable } from './table.js';

export interface RendezvousConfig {
  jobId: string;
  rank: number;
  size: number;
  /** Host (or address) of rank 0. */
  coordinator: string;
  port: number;
  /** Where rank 0 binds: '0.0.0.0' for every interface, or the --iface address. */
  bindAddress: string;
  secret: string | undefined;
  timeoutMs: number;
  self: MemberInfo;
  /** Where each rank is expected to run, to name the ones that never joined. */
  rankHosts: readonly string[];
  log: (line: string) => void;
  /** Shared ZeroMQ context; many simulated members in one process need a larger one. */
  context?: zmq.Context;
}

export interface Rendezvous {
  /** Every rank's MemberInfo, indexed by rank; identical on every rank. */
  readonly table: readonly MemberInfo[];
  /** Random bytes rank 0 chose for this run (32 hex digits), the same on every rank. */
  readonly session: string;
  /** Returns once every rank has called barrier with the same name. */
  barrier(name: string): Promise<void>;
  close(): Promise<void>;
  readonly rejected: RejectLog;
}

/** A member waits this much longer than the coordinator, so the coordinator's verdict arrives first. */
function memberGraceMs(timeoutMs: number): number {
  return Math.min(5000, timeoutMs / 2);
}
const LINGER_MS = 2000;
const MAX_INBOUND_BYTES = 1 << 20;
/** Abort messages name this many missing ranks, so they stay under the header limit at any size. */
const ABORT_NAMES = 20;

export async function rendezvous(config: RendezvousConfig): Promise<Rendezvous> {
  if (config.self.rank !== config.rank) throw new Error('self.rank must equal rank');
  return config.rank === 0 ? Coordinator.start(config) : Member.start(config);
}

interface Joined {
  info: MemberInfo;
  routingId: Buffer;
  nonce: string;
}

class Coordinator implements Rendezvous {
  readonly rejected: RejectLog;
  table: MemberInfo[] = [];
  readonly session = newNonce();
  private readonly joined = new Map<number, Joined>();
  private readonly seenNonces = new Set<string>();
  private readonly keyring: Keyring;

  private constructor(private readonly config: RendezvousConfig, private readonly socket: zmq.Router) {
    this.keyring = makeKeyring(config.jobId, config.secret);
    this.rejected = new RejectLog(config.log);
  }

  static async start(config: RendezvousConfig): Promise<Coordinator> {
    const socket = new zmq.Router({
      linger: LINGER_MS,
      // Only small joins and barriers come in: larger messages up to this size are refused and logged
      // by decodeMessage; ZeroMQ drops the connection of a peer that sends anything larger.
      maxMessageSize: MAX_INBOUND_BYTES,
      // Every rank connects at once: past ZeroMQ's default backlog of 100 the kernel drops the
      // connection attempts and those ranks retry after 1 s, 3 s, 7 s (capped by net.core.somaxconn).
      backlog: Math.max(100, config.size),
      ...(config.context ? { context: config.context } : {}),
    });
    const endpoint = tcpEndpoint(config.bindAddress, config.port);
    try {
      await retryInterrupted(() => socket.bind(endpoint));
    } catch (error) {
      socket.close();
      const code = (error as { code?: string }).code;
      const where = describeRank(0, config.self.host);
      if (code === 'EADDRINUSE') {
        throw new PortInUseError(`port ${config.port} is already in use on ${where}`, {
          rank: 0, host: config.self.host, cause: error,
          hint: 'another job or program holds it; choose a free port with --port (or HPCTRAIN_PORT)',
        });
      }
      throw new RendezvousConnectionError(`${where} could not listen on ${endpoint}: ${(error as Error).message}`, {
        rank: 0, host: config.self.host, cause: error, hint: 'check --iface and --port',
      });
    }
    const coordinator = new Coordinator(config, socket);
    try {
      await coordinator.gather();
    } catch (error) {
      socket.close();
      throw error;
    }
    return coordinator;
  }

  private async gather(): Promise<void> {
    const { size, timeoutMs } = this.config;
    const deadline = Date.now() + timeoutMs;
    while (this.joined.size < size - 1) {
      const message = await this.receiveUntil(deadline);
      if (!message) {
        const missing = this.missingRanks((rank) => this.joined.has(rank));
        const reason = (limit?: number) =>
          `${missing.length} of ${size} ranks did not join within ${timeoutMs / 1000} s: ${nameRanks(missing, this.config.rankHosts, limit)}`;
        await this.abortAll(reason(ABORT_NAMES));
        throw new RendezvousTimeoutError(`rendezvous of job ${this.config.jobId} failed: ${reason()}`, {
          rank: 0, host: this.config.self.host,
          hint: 'are those nodes up, and did hpctrain start there? If they start slowly, raise --rendezvous-timeout.',
        });
      }
      const { header, routingId, from } = message;
      if (header.type !== 'join') {
        this.rejected.record('unexpected', `${header.type} before the table was sent`, from);
        continue;
      }
      if (this.seenNonces.has(header.nonce)) {
        this.rejected.record('replay', `join of rank ${header.rank} seen before`, from);
        continue;
      }
      this.seenNonces.add(header.nonce);
      if (header.rank === 0 || header.rank >= size) {
        this.rejected.record('bad-rank', `rank ${header.rank} is not in 1..${size - 1}`, from);
        continue;
      }
      const earlier = this.joined.get(header.rank);
      if (earlier) {
        this.rejected.record('duplicate-rank', `rank ${header.rank} already joined from ${earlier.info.host} (${earlier.info.address})`, from);
        continue;
      }
      this.joined.set(header.rank, { info: header.member!, routingId, nonce: header.nonce });
    }
    this.table = [this.config.self, ...[...this.joined.values()].map((j) => j.info)].sort((a, b) => a.rank - b.rank);
    const body = encodeTable(this.table, this.session);
    for (const member of this.joined.values()) {
      await this.sendTo(member, { type: 'table', nonce: member.nonce }, body);
    }
  }

  async barrier(name: string): Promise<void> {
    const deadline = Date.now() + this.config.timeoutMs;
    const arrived = new Map<number, string>();
    while (arrived.size < this.config.size - 1) {
      const message = await this.receiveUntil(deadline);
      if (!message) {
        const missing = this.missingRanks((rank) => arrived.has(rank));
        const hosts = this.table.map((m) => m.host);
        const reason = (limit?: number) =>
          `barrier "${name}": ${nameRanks(missing, hosts, limit)} did not arrive within ${this.config.timeoutMs / 1000} s`;
        await this.abortAll(reason(ABORT_NAMES));
        throw new RendezvousTimeoutError(reason(), { rank: 0, host: this.config.self.host, hint: 'did that rank crash? Its own output says why.' });
      }
      const { header, routingId, from } = message;
      const member = this.joined.get(header.rank);
      if (header.type !== 'barrier' || !member || !member.routingId.equals(routingId)) {
        this.rejected.record('unexpected', `${header.type} from rank ${header.rank} during barrier "${name}"`, from);
        continue;
      }
      if (this.seenNonces.has(header.nonce)) {
        this.rejected.record('replay', `barrier message of rank ${header.rank} seen before`, from);
        continue;
      }
      this.seenNonces.add(header.nonce);
      if (header.barrier !== name) {
        this.rejected.record('unexpected', `rank ${header.rank} is at barrier "${header.barrier}", not "${name}"`, from);
        continue;
      }
      arrived.set(header.rank, header.nonce);
    }
    for (const [rank, nonce] of arrived) {
      await this.sendTo(this.joined.get(rank)!, { type: 'release', nonce, barrier: name });
    }
  }

  async close(): Promise<void> {
    const summary = this.rejected.summary();
    if (summary) this.config.log(summary);
    this.socket.close();
  }

  /** The next message that verifies, or undefined at the deadline; refused ones are logged. */
  private async receiveUntil(deadline: number): Promise<{ header: Header; routingId: Buffer; from: string } | undefined> {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      this.socket.receiveTimeout = left;
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        if ((error as { code?: string }).code === 'EAGAIN') return undefined;
        throw error;
      }
      const [routingId, ...rest] = frames as [Buffer, ...Buffer[]];
      const from = `peer ${describePeer(routingId)}`;
      try {
        const { header } = decodeMessage(this.keyring, rest, 0);
        return { header, routingId, from };
      } catch (error) {
        if (!(error instanceof ProtocolReject)) throw error;
        this.rejected.record(error.reason, error.message, from);
      }
    }
  }

  private missingRanks(present: (rank: number) => boolean): number[] {
    const missing: number[] = [];
    for (let rank = 1; rank < this.config.size; rank++) if (!present(rank)) missing.push(rank);
    return missing;
  }

  private async abortAll(reason: string): Promise<void> {
    for (const member of this.joined.values()) {
      await this.sendTo(member, { type: 'abort', nonce: member.nonce, reason });
    }
  }

  private async sendTo(member: Joined, fields: Pick<Header, 'type' | 'nonce'> & Partial<Header>, body?: Buffer): Promise<void> {
    const header: Header = { ...fields, jobId: this.config.jobId, rank: 0 };
    await this.socket.send([member.routingId, ...encodeMessage(this.keyring, header, body)]);
  }
}

class Member implements Rendezvous {
  readonly rejected: RejectLog;
  table: MemberInfo[] = [];
  session = '';
  private readonly keyring: Keyring;
  private readonly endpoint: string;
  /** The coordinator's abort echoes this, whatever we were waiting for. */
  private readonly joinNonce = newNonce();

  private constructor(private readonly config: RendezvousConfig, private readonly socket: zmq.Dealer, address: string) {
    this.keyring = makeKeyring(config.jobId, config.secret);
    this.rejected = new RejectLog(config.log);
    this.endpoint = tcpEndpoint(address, config.port);
  }

  static async start(config: RendezvousConfig): Promise<Member> {
    const deadline = Date.now() + config.timeoutMs + memberGraceMs(config.timeoutMs);
    const address = await resolveUntil(config, deadline);
    const socket = new zmq.Dealer({
      linger: LINGER_MS,
      // A stable identity: if the TCP connection drops and reconnects, replies still find us.
      routingId: `rank${config.rank}-${newNonce().slice(0, 12)}`,
      maxMessageSize: MAX_TABLE_BYTES + MAX_HEADER_BYTES * 4,
      // Members usually start within milliseconds of rank 0: retry soon, then back off.
      reconnectInterval: 10,
      reconnectMaxInterval: 250,
      ...(config.context ? { context: config.context } : {}),
    });
    const member = new Member(config, socket, address);
    try {
      // ZeroMQ retries the connection in the background, so ranks may start before rank 0.
      await retryInterrupted(() => socket.connect(member.endpoint));
      await member.join(deadline);
    } catch (error) {
      socket.close();
      throw error;
    }
    return member;
  }

  private async join(deadline: number): Promise<void> {
    await this.send({ type: 'join', nonce: this.joinNonce, member: this.config.self });
    const body = await this.awaitReply('table', this.joinNonce, deadline, 'join');
    ({ members: this.table, session: this.session } = decodeTable(body, this.config.size));
  }

  async barrier(name: string): Promise<void> {
    const nonce = newNonce();
    await this.send({ type: 'barrier', nonce, barrier: name });
    await this.awaitReply('release', nonce, Date.now() + this.config.timeoutMs + memberGraceMs(this.config.timeoutMs), `barrier "${name}"`);
  }

  async close(): Promise<void> {
    const summary = this.rejected.summary();
    if (summary) this.config.log(summary);
    this.socket.close();
  }

  private async send(fields: Pick<Header, 'type' | 'nonce'> & Partial<Header>): Promise<void> {
    await this.socket.send(encodeMessage(this.keyring, { ...fields, jobId: this.config.jobId, rank: this.config.rank }));
  }

  private async awaitReply(type: 'table' | 'release', nonce: string, deadline: number, what: string): Promise<Buffer> {
    const { rank, self } = this.config;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw await this.timeoutError(what);
      this.socket.receiveTimeout = left;
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        if ((error as { code?: string }).code === 'EAGAIN') continue;
        throw error;
      }
      try {
        const { header, body } = decodeMessage(this.keyring, frames, MAX_TABLE_BYTES);
        const answersUs = header.nonce === nonce || (header.type === 'abort' && header.nonce === this.joinNonce);
        if (header.rank !== 0 || !answersUs) throw new ProtocolReject('replay', `${header.type} answers another request`);
        if (header.type === 'abort') {
          throw new RendezvousClosedError(`${describeRank(rank, self.host)} stopped: the coordinator gave up: ${header.reason}`, {
            rank, host: self.host,
          });
        }
        if (header.type !== type) throw new ProtocolReject('unexpected', `${header.type} while waiting for ${type}`);
        return body;
      } catch (error) {
        if (!(error instanceof ProtocolReject)) throw error;
        this.rejected.record(error.reason, error.message, `coordinator ${this.endpoint}`);
      }
    }
  }

  private async timeoutError(what: string): Promise<Error> {
    const { rank, self, coordinator, port, timeoutMs } = this.config;
    const address = this.endpoint.replace(/^tcp:\/\/\[?|\]?:\d+$/g, '');
    const listening = await probeTcp(address, port);
    const seconds = (timeoutMs + memberGraceMs(timeoutMs)) / 1000;
    const where = `${coordinator}:${port}${address === coordinator ? '' : ` (${address})`}`;
    if (!listening) {
      return new RendezvousConnectionError(`${describeRank(rank, self.host)} could not reach the coordinator at ${where} within ${seconds} s`, {
        rank, host: self.host,
        hint: `is rank 0 running on ${coordinator}? Do all ranks use the same --port? Is the port firewalled between nodes?`,
      });
    }
    return new RendezvousTimeoutError(`${describeRank(rank, self.host)} reached the coordinator at ${where} but got no answer to its ${what} within ${seconds} s`, {
      rank, host: self.host,
      hint: 'is something else listening on that port, or does this rank have a different HPCTRAIN_SECRET or job id? Rank 0\'s log says why.',
    });
  }
}

/** A member's routing id is readable ("rank3-1f2e..."); ZeroMQ's own ids for other peers are not. */
function describePeer(routingId: Buffer): string {
  const text = routingId.toString('latin1');
  return /^[\x21-\x7e]{1,64}$/.test(text) ? text : `0x${routingId.toString('hex').slice(0, 32)}`;
}

/** "rank 3 (nid00004), rank 7 (nid00008)", cut short after `limit` names ("... and 2829 more"). */
function nameRanks(ranks: readonly number[], hosts: readonly (string | undefined)[], limit = Infinity): string {
  const named = ranks.slice(0, limit).map((r) => describeRank(r, hosts[r])).join(', ');
  return ranks.length > limit ? `${named} and ${ranks.length - limit} more` : named;
}

/** ZeroMQ's bind and connect can fail with EINTR when a signal arrives (profilers send many). */
async function retryInterrupted<T>(operation: () => T | Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if ((error as { code?: string }).code !== 'EINTR' || attempt >= 5) throw error;
    }
  }
}

async function resolveUntil(config: RendezvousConfig, deadline: number): Promise<string> {
  for (;;) {
    try {
      return await resolveHost(config.coordinator);
    } catch (error) {
      if (Date.now() + 1000 > deadline) {
        throw new RendezvousConnectionError(`coordinator host "${config.coordinator}" does not resolve: ${(error as Error).message}`, {
          rank: config.rank, host: config.self.host, cause: error,
          hint: 'check DNS or /etc/hosts on this node, or give the address of rank 0\'s node with HPCTRAIN_COORDINATOR',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
