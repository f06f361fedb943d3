// The frames of the gradient-exchange plane and their authentication. Gradients are too large
// to HMAC at line rate (HMAC-SHA256 runs at about 1.3 GiB/s here, about what ZeroMQ moves), so
// every message carries a Poly1305 tag instead (ChaCha20-Poly1305 with the header and payload as
// associated data and nothing encrypted: about 9.5 GiB/s). The plane's key is derived from the
// job secret, the job id and the run's session (random bytes rank 0 put in the authenticated
// rendezvous table, fresh for every run, requeued or not); each sender tags with a key of its own
// derived from it, under a nonce of the receiver's rank and a counter kept per (sender,
// receiver), which the receiver requires to increase. So a message cannot be replayed, moved to
// another receiver, another run or another job.
//
//   frame 0  header, 36 bytes: version u8, 0 u8, 0 u16, sender u32, receiver u32, counter u64,
//            op u32, step u32, piece u32, payload bytes u32 (little-endian)
//   frame 1  tag, 16 bytes
//   frame 2  payload
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

export const FRAME_VERSION = 2;
export const HEADER_BYTES = 36;
export const TAG_BYTES = 16;

/** Where a message belongs: which collective operation (numbered in call order), step and piece. */
export interface MessageAddress {
  op: number;
  step: number;
  piece: number;
}

export interface MessageHeader extends MessageAddress {
  sender: number;
  receiver: number;
  /** Counts the sender's messages to this receiver, from 0. */
  counter: number;
  payloadBytes: number;
}

/**
 * The 32-byte key of the plane, from the job secret; `session` (the job id and the run's random
 * session from the rendezvous table) keeps two jobs' and two runs' keys apart.
 */
export function deriveCommKey(secret: string, session: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, session, 'hpctrain gradient exchange v2', 32));
}

/** The key a sender tags its messages with. */
export function senderKey(commKey: Buffer, sender: number): Buffer {
  return Buffer.from(hkdfSync('sha256', commKey, Buffer.alloc(0), `hpctrain gradient exchange sender ${sender}`, 32));
}

export function encodeHeader(header: MessageHeader): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  buffer.writeUInt8(FRAME_VERSION, 0);
  buffer.writeUInt32LE(header.sender, 4);
  buffer.writeUInt32LE(header.receiver, 8);
  buffer.writeBigUInt64LE(BigInt(header.counter), 12);
  buffer.writeUInt32LE(header.op, 20);
  buffer.writeUInt32LE(header.step, 24);
  buffer.writeUInt32LE(header.piece, 28);
  buffer.writeUInt32LE(header.payloadBytes, 32);
  return buffer;
}

/** Throws on a frame of the wrong size or version; the caller logs and drops it. */
export function decodeHeader(buffer: Buffer): MessageHeader {
  if (buffer.length !== HEADER_BYTES) throw new Error(`header of ${buffer.length} bytes, expected ${HEADER_BYTES}`);
  const version = buffer.readUInt8(0);
  if (version !== FRAME_VERSION) throw new Error(`frame version ${version}, expected ${FRAME_VERSION}`);
  return {
    sender: buffer.readUInt32LE(4),
    receiver: buffer.readUInt32LE(8),
    counter: Number(buffer.readBigUInt64LE(12)),
    op: buffer.readUInt32LE(20),
    step: buffer.readUInt32LE(24),
    piece: buffer.readUInt32LE(28),
    payloadBytes: buffer.readUInt32LE(32),
  };
}

/** Unique under one sender's key: a counter per receiver. */
function nonceOf(receiver: number, counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(receiver, 0);
  nonce.writeBigUInt64LE(BigInt(counter), 4);
  return nonce;
}

/** The tag of a header (already encoded) and its payload, under the sender's key (senderKey). */
export function tagOf(key: Buffer, header: MessageHeader, headerBytes: Buffer, payload: Uint8Array): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonceOf(header.receiver, header.counter), { authTagLength: TAG_BYTES });
  cipher.setAAD(headerBytes, { plaintextLength: 0 });
  cipher.setAAD(payload, { plaintextLength: 0 });
  cipher.final();
  return cipher.getAuthTag();
}

/** Whether `tag` authenticates the header and payload. */
export function verifyTag(key: Buffer, header: MessageHeader, headerBytes: Buffer, payload: Uint8Array, tag: Buffer): boolean {
  if (tag.length !== TAG_BYTES) return false;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceOf(header.receiver, header.counter), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(tag);
  decipher.setAAD(headerBytes, { plaintextLength: 0 });
  decipher.setAAD(payload, { plaintextLength: 0 });
  try {
    decipher.final();
    return true;
  } catch {
    return false;
  }
}
