// The rendezvous wire format, apart from any socket. A message is four ZeroMQ frames:
//   [PROTOCOL_TAG, header (JSON), body (bytes, often empty), mac (32 bytes)]
// mac = HMAC-SHA256(key, each of tag, job id, header, SHA-256(body), length-prefixed), with the key
// derived from the job secret by HKDF (a label of its own: the gradient plane's key is another),
// so a message from another job, or from anyone without the job's secret, fails verification.
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_TAG = 'hpctrain-rdzv/1';
export const MAC_BYTES = 32;
export const MAX_HEADER_BYTES = 4096;
/** The coordinator accepts no body; a member accepts a table of up to this size. */
export const MAX_TABLE_BYTES = 16 << 20;

export type MessageType = 'join' | 'table' | 'barrier' | 'release' | 'abort';

/** What each rank tells the others about itself. */
export interface MemberInfo {
  rank: number;
  host: string;
  /** The address the other ranks should use to reach this one. */
  address: string;
  localRank: number;
  pid: number;
}

export interface Header {
  type: MessageType;
  jobId: string;
  /** The sender's rank. */
  rank: number;
  /** Fresh per join or barrier; replies echo it, so an old reply cannot be replayed. */
  nonce: string;
  member?: MemberInfo;
  barrier?: string;
  reason?: string;
}

/** Why a message was refused; the keys are the counters in the rejection log. */
export type RejectReason =
  | 'malformed' | 'oversized' | 'bad-mac' | 'foreign-job' | 'bad-rank' | 'duplicate-rank'
  | 'replay' | 'unexpected';

export class ProtocolReject extends Error {
  constructor(readonly reason: RejectReason, detail: string) {
    super(detail);
  }
}

export interface Keyring {
  jobId: string;
  key: Buffer;
}

/** Without a secret the MAC still binds messages to the job id, but anyone can forge them. */
export function makeKeyring(jobId: string, secret: string | undefined): Keyring {
  const key = secret ? Buffer.from(hkdfSync('sha256', secret, jobId, 'hpctrain rendezvous v2', 32)) : Buffer.from('hpctrain-unauthenticated', 'utf8');
  return { jobId, key };
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function encodeMessage(keyring: Keyring, header: Header, body: Buffer = Buffer.alloc(0)): Buffer[] {
  const tag = Buffer.from(PROTOCOL_TAG);
  const head = Buffer.from(JSON.stringify(header));
  return [tag, head, body, computeMac(keyring, tag, head, bodyDigest(body))];
}

/** Verify and parse, or throw ProtocolReject saying why. */
export function decodeMessage(keyring: Keyring, frames: readonly Buffer[], maxBody: number): { header: Header; body: Buffer } {
  if (frames.length !== 4) throw new ProtocolReject('malformed', `${frames.length} frames, expected 4`);
  const [tag, head, body, mac] = frames as [Buffer, Buffer, Buffer, Buffer];
  if (!tag.equals(Buffer.from(PROTOCOL_TAG))) throw new ProtocolReject('malformed', 'unknown protocol tag');
  if (head.length > MAX_HEADER_BYTES) throw new ProtocolReject('oversized', `header of ${head.length} bytes`);
  if (body.length > maxBody) throw new ProtocolReject('oversized', `body of ${body.length} bytes`);
  if (mac.length !== MAC_BYTES) throw new ProtocolReject('malformed', `mac of ${mac.length} bytes`);
  let header: Header;
  try {
    header = JSON.parse(head.toString('utf8')) as Header;
  } catch {
    throw new ProtocolReject('malformed', 'header is not JSON');
  }
  if (typeof header !== 'object' || header === null || typeof header.jobId !== 'string') {
    throw new ProtocolReject('malformed', 'header has no job id');
  }
  if (header.jobId !== keyring.jobId) throw new ProtocolReject('foreign-job', `job id "${header.jobId.slice(0, 64)}"`);
  if (!timingSafeEqual(mac, computeMac(keyring, tag, head, bodyDigest(body)))) throw new ProtocolReject('bad-mac', 'MAC does not verify');
  validateHeader(header);
  return { header, body };
}

/** Rank 0 sends one table body to every rank: hash it once, and MAC only its digest. */
const bodyDigests = new WeakMap<Buffer, Buffer>();
function bodyDigest(body: Buffer): Buffer {
  let digest = bodyDigests.get(body);
  if (!digest) bodyDigests.set(body, (digest = createHash('sha256').update(body).digest()));
  return digest;
}

function computeMac(keyring: Keyring, ...parts: Buffer[]): Buffer {
  const hmac = createHmac('sha256', keyring.key);
  const job = Buffer.from(keyring.jobId);
  for (const part of [parts[0]!, job, ...parts.slice(1)]) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    hmac.update(length).update(part);
  }
  return hmac.digest();
}

const TYPES: ReadonlySet<string> = new Set(['join', 'table', 'barrier', 'release', 'abort']);
const NAME = /^[A-Za-z0-9._:%-]{1,255}$/;

function validateHeader(h: Header): void {
  if (!TYPES.has(h.type)) throw new ProtocolReject('malformed', `unknown type ${JSON.stringify(h.type)}`);
  if (!isCount(h.rank)) throw new ProtocolReject('malformed', 'rank is not a non-negative integer');
  if (typeof h.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(h.nonce)) throw new ProtocolReject('malformed', 'bad nonce');
  if (h.type === 'join') {
    const m = h.member;
    if (!m || !isCount(m.rank) || !isCount(m.localRank) || !isCount(m.pid) || m.rank !== h.rank
      || typeof m.host !== 'string' || !NAME.test(m.host) || typeof m.address !== 'string' || !NAME.test(m.address)) {
      throw new ProtocolReject('malformed', 'join without a valid member record');
    }
  }
  if ((h.type === 'barrier' || h.type === 'release') && (typeof h.barrier !== 'string' || h.barrier.length > 128)) {
    throw new ProtocolReject('malformed', `${h.type} without a barrier name`);
  }
  if (h.type === 'abort' && typeof h.reason !== 'string') throw new ProtocolReject('malformed', 'abort without a reason');
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
