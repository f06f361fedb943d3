// Point-to-point messages between ranks over ZeroMQ, for the gradient exchange: every rank binds
// one PULL socket on its service port and connects a PUSH socket to each peer it sends to. A
// message is addressed by (sender, op, step, piece); receive() waits for exactly that one, so
// the collectives above need no ordering of their own. Messages are authenticated (frames.ts);
// one that fails is dropped and logged, never delivered.
//
// Liveness. Each rank connects to every other rank as soon as it opens (to the next rank of the
// ring only, in jobs of more than EAGER_PEERS ranks), with ZMTP heartbeats, which ZeroMQ's own
// threads answer, so a rank busy in a long training step still answers. A connection that drops
// (the peer died: the OS closed its sockets) or whose heartbeats go unanswered for
// HEARTBEAT_TIMEOUT_MS (the peer hangs) names that peer after a short grace period, unless this
// rank is closing by then. It tells every other rank which peer it lost (an abort message), then
// fails; so does every rank that gets the abort. A receive that waits longer than `timeoutMs` for
// its message fails the same way, as a last resort. Ranks that end normally must pass a barrier
// before close(), so that no rank takes another's exit for a death.
import * as zmq from 'zeromq';
import { CommError } from '../errors.js';
import { decodeHeader, encodeHeader, type MessageAddress, type MessageHeader, senderKey, tagOf, verifyTag } from './frames.js';
import type { ReceiveOptions } from './group.js';

export interface Peer {
  rank: number;
  host: string;
  address: string;
  port: number;
}

export interface TransportOptions {
  rank: number;
  /** Every rank of the job, this one included, indexed by rank. */
  peers: readonly Peer[];
  /** From deriveCommKey. */
  key: Buffer;
  /** How long a receive waits for its peer before the job is aborted. */
  timeoutMs: number;
  /** How long a peer may take to open its port after the rendezvous (default 30 s). */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** The op number of abort messages; collectives number theirs from 1. */
const ABORT_OP = 0xffffffff;
const HEARTBEAT_INTERVAL_MS = 2000;
export const HEARTBEAT_TIMEOUT_MS = 15_000;
/** After a dropped connection: time for this rank to reach close() if the peer ended normally, or for the first loss to be named first. */
const LOSS_GRACE_MS = 3000;
/** Every rank opens its port right after the rendezvous: a peer not there by then died or could not start. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Up to this many ranks, every rank connects to every other, and sees any death itself. */
const EAGER_PEERS = 64;
/** Larger messages are refused by ZeroMQ before they are read: the collectives send pieces of at most 16 MiB. */
const MAX_MESSAGE_BYTES = 32 * 2 ** 20;

interface Waiter {
  resolve(payload: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class Transport {
  readonly rank: number;
  readonly size: number;
  /** Messages dropped for a bad tag, header or counter. */
  rejected = 0;
  private readonly pull: zmq.Pull;
  private readonly pushes = new Map<number, zmq.Push>();
  private readonly sendChains = new Map<number, Promise<void>>();
  private readonly mailbox = new Map<string, Buffer>();
  private readonly waiters = new Map<string, Waiter>();
  /** The last counter accepted from each sender (to this rank). */
  private readonly lastCounter: number[];
  /** The next counter of this rank's messages to each receiver. */
  private readonly nextCounter: number[];
  private readonly ownKey: Buffer;
  private readonly senderKeys = new Map<number, Buffer>();
  /** Ranks that have ended their part of the job (parameter servers after the stop): their exit is no death. */
  private readonly departed = new Set<number>();
  private failure: CommError | undefined;
  private aborting = false;
  private closed = false;
  private readonly receiving: Promise<void>;

  private constructor(private readonly options: TransportOptions, pull: zmq.Pull) {
    this.rank = options.rank;
    this.size = options.peers.length;
    this.pull = pull;
    this.lastCounter = new Array<number>(this.size).fill(-1);
    this.nextCounter = new Array<number>(this.size).fill(0);
    this.ownKey = senderKey(options.key, this.rank);
    this.receiving = this.receiveLoop();
  }

  static async open(options: TransportOptions): Promise<Transport> {
    const self = options.peers[options.rank];
    if (!self) throw new Error(`rank ${options.rank} is not among the ${options.peers.length} peers`);
    const pull = new zmq.Pull({ maxMessageSize: MAX_MESSAGE_BYTES, linger: 0 });
    try {
      await pull.bind(`tcp://0.0.0.0:${self.port}`);
    } catch (error) {
      pull.close();
      throw new CommError(`rank ${self.rank} could not listen on port ${self.port} for the gradient exchange`, {
        rank: self.rank, host: self.host, cause: error, hint: 'another program holds the port; choose another base port with --port',
      });
    }
    const transport = new Transport(options, pull);
    for (let step = 1; step < transport.size && (step === 1 || transport.size <= EAGER_PEERS); step++) {
      transport.pushTo((options.rank + step) % transport.size);
    }
    return transport;
  }

  /** Queues one message to `to`; resolves when ZeroMQ has taken it. Messages to one peer keep their order. */
  send(to: number, address: MessageAddress, payload: Uint8Array): Promise<void> {
    this.throwIfFailed();
    return this.sendUnchecked(to, address, payload).catch((error: unknown) => {
      throw this.closed ? new CommError('the transport is closed') : new CommError(`sending to rank ${to} failed`, { rank: this.rank, cause: error });
    });
  }

  /**
   * The payload of the message from `from` at `address`, once it arrives. A `patient` receive has
   * no deadline: for waits whose length is the peer's work (its share of an evaluation), where a
   * dead or hung peer is still found by its connection and heartbeats.
   */
  receive(from: number, address: MessageAddress, options: ReceiveOptions = {}): Promise<Buffer> {
    this.throwIfFailed();
    const key = mailboxKey(from, address);
    const waiting = this.mailbox.get(key);
    if (waiting) {
      this.mailbox.delete(key);
      return Promise.resolve(waiting);
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer = options.patient ? undefined : setTimeout(() => {
        this.waiters.delete(key);
        const peer = this.options.peers[from]!;
        const error = new CommError(
          `rank ${this.rank} heard nothing from rank ${from} (${peer.host}) for ${this.options.timeoutMs / 1000} s in the gradient exchange`,
          { rank: from, host: peer.host, hint: `rank ${from} died or hangs; see its log, and the scheduler's record of its node` },
        );
        reject(error);
        void this.abort(error);
      }, this.options.timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  /**
   * Tells every peer, naming the rank the error names, then fails every wait here. The messages go
   * first: a rank typically exits as soon as its wait fails.
   */
  async abort(error: CommError): Promise<void> {
    if (this.failure || this.aborting) return;
    this.aborting = true;
    const lost = Buffer.from(JSON.stringify({ rank: error.rank, host: error.host, message: error.message }));
    await Promise.allSettled(this.options.peers.filter((p) => p.rank !== this.rank && p.rank !== error.rank)
      .map((p) => withTimeout(this.sendUnchecked(p.rank, { op: ABORT_OP, step: 0, piece: 0 }, lost), 1000)));
    this.fail(error);
  }

  /** From now on, `peer` closing its connections is expected: it has finished (a parameter server told to stop). */
  markDeparted(peer: number): void {
    this.departed.add(peer);
  }

  /** Closes the sockets, after what is queued has gone out (for up to 2 s). After a barrier, when every rank ends normally. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new CommError('the transport is closed'));
    await Promise.allSettled([...this.sendChains.values()].map((chain) => withTimeout(chain, 2000)));
    for (const push of this.pushes.values()) push.close();
    this.pull.close();
    await this.receiving;
  }

  private sendUnchecked(to: number, address: MessageAddress, payload: Uint8Array): Promise<void> {
    const header: MessageHeader = { ...address, sender: this.rank, receiver: to, counter: this.nextCounter[to]!++, payloadBytes: payload.byteLength };
    const headerBytes = encodeHeader(header);
    const frames = [headerBytes, tagOf(this.ownKey, header, headerBytes, payload), payload];
    const socket = this.pushTo(to);
    // ZeroMQ allows one send at a time per socket; the chain also keeps each peer's messages in counter order.
    const chain = (this.sendChains.get(to) ?? Promise.resolve()).then(() => socket.send(frames));
    this.sendChains.set(to, chain.catch(() => undefined));
    return chain;
  }

  private pushTo(to: number): zmq.Push {
    let socket = this.pushes.get(to);
    if (!socket) {
      const peer = this.options.peers[to];
      if (!peer || to === this.rank) throw new Error(`rank ${this.rank} cannot send to rank ${to}`);
      // linger: what is queued at close still goes out, for a while.
      socket = new zmq.Push({
        linger: 2000, sendHighWaterMark: 0, heartbeatInterval: HEARTBEAT_INTERVAL_MS, heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
      });
      // Only a connection that completed ZeroMQ's handshake was a peer: before its transport binds,
      // a rank's port may briefly hold something else (join-job's port check), whose hang-up is no death.
      let handshaken = false;
      // A peer that died between the rendezvous and opening its port is never connected: name it
      // (its first handshake clears this).
      const timeoutMs = this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
      const neverOpened = setTimeout(() => {
        if (this.closed || this.failure || this.aborting || this.departed.has(to)) return;
        void this.abort(new CommError(`rank ${this.rank} cannot reach rank ${to} (${peer.host}): it has not opened its gradient-exchange port ${peer.port} ` +
          `in the ${timeoutMs / 1000} s since the rendezvous`, {
          rank: to, host: peer.host, hint: `rank ${to} died or could not start after the rendezvous; see its log, and the scheduler's record of ${peer.host}`,
        }));
      }, timeoutMs);
      neverOpened.unref();
      socket.events.on('handshake', () => {
        handshaken = true;
        clearTimeout(neverOpened);
      });
      socket.events.on('disconnect', () => {
        if (handshaken) this.lostConnection(to);
        handshaken = false;
      });
      socket.connect(`tcp://${peer.address.includes(':') ? `[${peer.address}]` : peer.address}:${peer.port}`);
      this.pushes.set(to, socket);
    }
    return socket;
  }

  private lostConnection(peer: number): void {
    if (this.closed || this.failure || this.departed.has(peer)) return;
    setTimeout(() => {
      if (this.closed || this.failure || this.aborting || this.departed.has(peer)) return;
      const { host } = this.options.peers[peer]!;
      void this.abort(new CommError(`rank ${this.rank} lost rank ${peer} (${host}): its connection dropped or stopped answering heartbeats`, {
        rank: peer, host, hint: `rank ${peer} died, was killed or hangs; see its log, and the scheduler's record of ${host}`,
      }));
    }, LOSS_GRACE_MS).unref();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.pull) this.accept(frames);
    } catch (error) {
      if (!this.closed) this.fail(new CommError(`rank ${this.rank}'s gradient-exchange socket failed`, { rank: this.rank, cause: error }));
    }
  }

  private accept(frames: Buffer[]): void {
    const [headerBytes, tag, payload] = frames;
    let header: MessageHeader;
    try {
      if (frames.length !== 3 || !headerBytes || !tag || !payload) throw new Error(`${frames.length} frames, expected 3`);
      header = decodeHeader(headerBytes);
      if (header.sender >= this.size || header.sender === this.rank) throw new Error(`sender rank ${header.sender} is not a peer`);
      if (header.payloadBytes !== payload.length) throw new Error(`payload of ${payload.length} bytes, header says ${header.payloadBytes}`);
      if (!verifyTag(this.keyOf(header.sender), header, headerBytes, payload, tag)) throw new Error(`bad tag (claims rank ${header.sender}); another job or run, or a forgery?`);
      if (header.receiver !== this.rank) throw new Error(`a message of rank ${header.sender}'s meant for rank ${header.receiver}, replayed here`);
      if (header.counter <= this.lastCounter[header.sender]!) throw new Error(`replayed message from rank ${header.sender} (counter ${header.counter})`);
      const waiting = header.op !== ABORT_OP && this.mailbox.has(mailboxKey(header.sender, header));
      if (waiting) throw new Error(`a second message from rank ${header.sender} for op ${header.op} step ${header.step} piece ${header.piece}; the first is kept`);
    } catch (error) {
      this.rejected++;
      if (this.rejected <= 20) this.options.log?.(`gradient exchange: dropped a message: ${(error as Error).message}`);
      return;
    }
    this.lastCounter[header.sender] = header.counter;
    if (header.op === ABORT_OP) return this.acceptAbort(header.sender, payload);
    const key = mailboxKey(header.sender, header);
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      clearTimeout(waiter.timer);
      waiter.resolve(payload);
    } else {
      this.mailbox.set(key, payload);
    }
  }

  private keyOf(sender: number): Buffer {
    let key = this.senderKeys.get(sender);
    if (!key) this.senderKeys.set(sender, (key = senderKey(this.options.key, sender)));
    return key;
  }

  private acceptAbort(sender: number, payload: Buffer): void {
    let lost: { rank?: number; host?: string; message?: string } = {};
    try {
      lost = JSON.parse(payload.toString()) as typeof lost;
    } catch {
      // An abort we cannot read still aborts.
    }
    const who = lost.rank === undefined ? 'another rank' : `rank ${lost.rank}${lost.host ? ` (${lost.host})` : ''}`;
    this.fail(new CommError(`rank ${sender} aborted the job: ${lost.message ?? 'no reason given'}`, {
      rank: lost.rank, host: lost.host, hint: `the job stopped because of ${who}; see its log`,
    }));
  }

  private fail(error: CommError): void {
    this.failure ??= error;
    for (const waiter of this.waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(this.failure);
    }
    this.waiters.clear();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

function mailboxKey(from: number, address: MessageAddress): string {
  return `${from}:${address.op}:${address.step}:${address.piece}`;
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, ms); })]).finally(() => clearTimeout(timer));
}
