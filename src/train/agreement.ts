// Before the first step, the workers check that they agree on what each of them worked out for
// itself: the data (a stale NFS listing on one node counts other images), the steps, the options,
// the model. The first worker's fingerprint goes to all; each compares it with its own; a sum of
// who differs comes back to all. A disagreement stops every worker with an error naming the ranks
// and what differs, where it would otherwise hang in the exchange or train apart.
import type { Collectives } from '../comm/collectives.js';
import { HpcTrainError } from '../errors.js';

/** Facts a worker computed on its own that must be the same on every worker: JSON values. */
export type Fingerprint = Record<string, string | number | boolean | null>;

export class AgreementError extends HpcTrainError {
  constructor(message: string, hint: string) {
    super(message, { phase: 'train', hint });
  }
}

/** A nested JSON value as fingerprint entries, "recipe.schedule.totalSteps": 5, so that a difference names its leaf. */
export function flattenFacts(prefix: string, value: unknown, into: Fingerprint = {}): Fingerprint {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flattenFacts(`${prefix}.${key}`, inner, into);
  } else {
    into[prefix] = value === undefined ? null : (Array.isArray(value) ? JSON.stringify(value) : (value as string | number | boolean | null));
  }
  return into;
}

/** The differences of `mine` from the first worker's, "key: X here, Y on the first worker", in key order. */
export function differences(mine: Fingerprint, first: Fingerprint): string[] {
  const keys = [...new Set([...Object.keys(mine), ...Object.keys(first)])].sort();
  return keys.filter((key) => JSON.stringify(mine[key]) !== JSON.stringify(first[key]))
    .map((key) => `${key}: ${JSON.stringify(mine[key] ?? null)} here, ${JSON.stringify(first[key] ?? null)} on the first worker`);
}

/**
 * Every worker calls this with its own fingerprint. Throws an AgreementError on every worker when
 * any differs from the first worker's; `ranks` are the workers' ranks in the job, by index.
 */
export async function checkAgreement(group: Collectives, workerIndex: number, ranks: readonly number[], fingerprint: Fingerprint): Promise<void> {
  if (ranks.length < 2) return;
  // The first worker's JSON, a byte per float32 (exact): its length first, then the bytes.
  const bytes = workerIndex === 0 ? Buffer.from(JSON.stringify(fingerprint)) : undefined;
  const length = Float32Array.of(bytes?.length ?? 0);
  await group.broadcast(length, 0);
  const carried = bytes ? Float32Array.from(bytes) : new Float32Array(length[0]!);
  await group.broadcast(carried, 0);
  const first = JSON.parse(Buffer.from(Uint8Array.from(carried)).toString('utf8')) as Fingerprint;
  const mine = differences(fingerprint, first);
  const flags = new Float64Array(ranks.length);
  flags[workerIndex] = mine.length > 0 ? 1 : 0;
  const differ = await group.sumExact(flags);
  const apart = ranks.filter((_, i) => differ[i]! > 0);
  if (apart.length === 0) return;
  const hint = 'every rank must see the same data and options: check the data directory on their nodes (a stale NFS or Lustre listing?), and that they run the same hpctrain';
  if (mine.length > 0) {
    throw new AgreementError(`rank ${ranks[workerIndex]} disagrees with the first worker (rank ${ranks[0]}) on ${mine.join('; ')}`, hint);
  }
  throw new AgreementError(`the workers disagree: rank(s) ${apart.join(', ')} differ from the first worker (rank ${ranks[0]}) on what they computed for themselves; see their logs`, hint);
}
