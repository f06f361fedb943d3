// Every random initializer of a model draws from its own seed, derived from one base seed and the
// layer's name: two builds with the same seed are bitwise identical, and adding or removing a
// layer (the auxiliary head, say) leaves the other layers' weights as they were.
import * as tfl from '@tensorflow/tfjs-layers';

type Initializer = ReturnType<typeof tfl.initializers.glorotUniform>;

/**
 * A 32-bit seed for `layerName` under `baseSeed`: FNV-1a over the text, then a murmur3 finalizer
 * so that neighbouring names give unrelated seeds. Never 0: tfjs reads a seed of 0 as "pick one at
 * random".
 */
export function deriveSeed(baseSeed: number, layerName: string): number {
  let hash = 0x811c9dc5;
  for (const char of `${baseSeed}/${layerName}`) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) || 1;
}

/** Keras's default kernel initializer (glorot_uniform), seeded for one layer. */
export function seededGlorotUniform(baseSeed: number, layerName: string): Initializer {
  return tfl.initializers.glorotUniform({ seed: deriveSeed(baseSeed, layerName) });
}
