import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, makeKeyring, newNonce, ProtocolReject, type Header, type RejectReason } from '../../src/rendezvous/protocol.js';
import { decodeTable, encodeTable } from '../../src/rendezvous/table.js';

const keyring = makeKeyring('job-1', 'secret-1');
const join = (rank = 1): Header => ({
  type: 'join', jobId: 'job-1', rank, nonce: newNonce(),
  member: { rank, host: 'nid00002', address: '10.1.0.2', localRank: 0, pid: 42 },
});

function rejectsWith(frames: Buffer[], reason: RejectReason, ring = keyring, maxBody = 0): void {
  assert.throws(() => decodeMessage(ring, frames, maxBody), (error: unknown) => {
    assert.ok(error instanceof ProtocolReject, String(error));
    assert.equal(error.reason, reason, error.message);
    return true;
  });
}

describe('rendezvous protocol', () => {
  it('round-trips a message', () => {
    const header = join();
    const decoded = decodeMessage(keyring, encodeMessage(keyring, header), 0);
    assert.deepEqual(decoded.header, header);
    assert.equal(decoded.body.length, 0);
  });

  it('refuses any single flipped byte, in every frame', () => {
    const frames = encodeMessage(keyring, { type: 'table', jobId: 'job-1', rank: 0, nonce: newNonce() }, Buffer.from('{"x":1}'));
    for (let f = 0; f < frames.length; f++) {
      for (let i = 0; i < frames[f]!.length; i++) {
        const copy = frames.map((b) => Buffer.from(b));
        copy[f]![i] ^= 0x01;
        assert.throws(() => decodeMessage(keyring, copy, 1024), ProtocolReject, `frame ${f} byte ${i}`);
      }
    }
  });

  it('says why it refuses', () => {
    const good = encodeMessage(keyring, join());
    rejectsWith(good.slice(0, 3), 'malformed');
    rejectsWith([Buffer.from('other/1'), ...good.slice(1)], 'malformed');
    rejectsWith([good[0]!, Buffer.alloc(5000, 0x20), good[2]!, good[3]!], 'oversized');
    rejectsWith([good[0]!, good[1]!, Buffer.alloc(10), good[3]!], 'oversized');
    rejectsWith([...good.slice(0, 3), good[3]!.subarray(0, 16)], 'malformed');
    rejectsWith(encodeMessage(makeKeyring('job-2', 'secret-1'), { ...join(), jobId: 'job-2' }), 'foreign-job');
    rejectsWith(encodeMessage(makeKeyring('job-1', 'wrong'), join()), 'bad-mac');
    rejectsWith(encodeMessage(keyring, { ...join(), nonce: 'short' }), 'malformed');
    rejectsWith(encodeMessage(keyring, { ...join(), type: 'hello' as Header['type'] }), 'malformed');
    rejectsWith(encodeMessage(keyring, { ...join(2), member: { ...join(2).member!, rank: 3 } }), 'malformed');
    rejectsWith(encodeMessage(keyring, { ...join(), member: { ...join().member!, host: 'a,b[1]' } }), 'malformed');
    rejectsWith(encodeMessage(keyring, { ...join(), rank: -1 }), 'malformed');
  });

  it('binds the MAC to the job id even without a secret', () => {
    const open1 = makeKeyring('job-1', undefined);
    const frames = encodeMessage(makeKeyring('job-9', undefined), join());
    rejectsWith(frames, 'bad-mac', open1);
  });

  it('carries the table in hostlist form and round-trips it', () => {
    const members = Array.from({ length: 300 }, (_, rank) => ({
      rank, host: `nid${String(rank + 1).padStart(5, '0')}`, address: `nid${String(rank + 1).padStart(5, '0')}`, localRank: rank % 4, pid: 5000 + rank * 7,
    }));
    const session = 'ab'.repeat(16);
    const body = encodeTable(members, session);
    assert.deepEqual(decodeTable(body, 300), { members, session });
    assert.throws(() => decodeTable(encodeTable(members, 'not hex'), 300), /table without a session/);
    assert.ok(body.length < 300 * 12, `${body.length} bytes`);
    assert.throws(() => decodeTable(body, 301), ProtocolReject);
    assert.throws(() => decodeTable(Buffer.from('{"hosts":"n[1-"}'), 1), ProtocolReject);
  });
});
