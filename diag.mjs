import { selectBackend } from './dist/src/backend/select.js';
import { tf } from './dist/src/backend/tf.js';
import { readCheckpoint } from './dist/src/checkpoint/checkpoint.js';
import { openInput } from './dist/src/data/input.js';
import { buildInceptionV3 } from './dist/src/model/inception-v3.js';
import { parameterLayout, writeParameters } from './dist/src/train/parameters.js';
await selectBackend('wasm', 0);
const ck = await readCheckpoint(process.argv[2]);
const m = buildInceptionV3({ imageSize: 75, numClasses: ck.meta.numClasses, auxLogits: false, seed: 1 });
const layout = parameterLayout(m);
writeParameters(m, layout, ck.arrays.weights);
for (const split of ['validation', 'train']) {
  const input = await openInput({ data: process.argv[3], split, mode: 'eval', batchSize: 32, imageSize: 75, rank: 0, size: 1, seed: 1, threads: 1, prefetch: 1 });
  let n = 0, inf = 0, trn = 0;
  for await (const b of input.epoch(0)) {
    const x = tf.tensor4d(b.images, [b.batchSize, 75, 75, 3]);
    const a = tf.argMax(m.apply(x, { training: false }), -1).dataSync();
    const save = Float32Array.from(ck.arrays.weights);
    const t = tf.argMax(m.apply(x, { training: true }), -1).dataSync();
    writeParameters(m, layout, save);
    for (let i = 0; i < b.batchSize; i++) { n++; inf += a[i] === b.labels[i]; trn += t[i] === b.labels[i]; }
    if (n >= 128) break;
  }
  console.log(split, 'n', n, 'inference-mode top1', inf / n, 'batch-stats top1', trn / n);
  await input.close();
}
// BN moving stats sample
const names = layout.entries.filter(e => !e.trainable).slice(0, 4).map(e => e.name);
for (const e of layout.entries.filter(e => !e.trainable).slice(-4)) console.log(e.name, Array.from(ck.arrays.weights.subarray(e.offset, e.offset + 4)).map(v => v.toFixed(3)).join(' '));
