// Seeded randomness for the input pipeline. Every draw is keyed by plain numbers (seed, epoch,
// example index), never by which rank or thread makes it, so each rank computes the same epoch
// order and a given example gets the same crop wherever it is decoded.

/** Uniform in [0, 1). */
export type Random = () => number;

/** A generator (sfc32) whose stream depends only on `keys`; each key is a whole number >= 0. */
export function createRandom(...keys: number[]): Random {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  for (const key of keys) {
    // Both 32-bit halves, so seeds and indices above 2^32 still differ.
    a = mix32(a ^ (key >>> 0));
    b = mix32(b ^ Math.floor(key / 0x100000000) ^ a);
    c = mix32(c + a + b);
  }
  let d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 0x100000000;
  };
  // The first outputs of sfc32 still echo the seed; discard them as its author advises.
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A whole number in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** A number in [low, high). */
export function randomUniform(random: Random, low: number, high: number): number {
  return low + (high - low) * random();
}

/** Murmur3's finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
