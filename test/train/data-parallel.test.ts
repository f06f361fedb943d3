// Data parallelism on real sockets (one transport per rank, in this process): N ranks with batch
// B each take the same steps as one rank with batch N*B, and every replica holds the same bytes.
import assert from 'node:assert/strict';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { Collectives } from '../../src/comm/collectives.js';
import { deriveCommKey } from '../../src/comm/frames.js';
import { type Peer, Transport } from '../../src/comm/transport.js';
import { DataParallel } from '../../src/train/data-parallel.js';
import { applyGradients, computeGradients } from '../../src/train/trainer.js';
import { weightsDigest } from '../../src/train/weights.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

const FEATURES = 12;
const CLASSES = 4;
const BATCH = 3;
const LOSS = { numClasses: CLASSES, labelSmoothing: 0.1, auxLossWeight: 0 };

/** A small model without batch norm, the same weights for every seed given. */
function buildModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [FEATURES] });
  const hidden = tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }).apply(input) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }).apply(hidden) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

/** A batch of feature vectors (computeGradients is told their shape). */
function batchOf(values: Float32Array, labels: Int32Array) {
  return { images: values, labels, batchSize: labels.length, imageSize: 0 };
}

async function openRanks(size: number): Promise<Transport[]> {
  const base = await getFreePortBlock(size);
  const peers: Peer[] = Array.from({ length: size }, (_, rank) => ({ rank, host: `node${rank}`, address: '127.0.0.1', port: base + rank }));
  return Promise.all(peers.map((p) => Transport.open({ rank: p.rank, peers, key: deriveCommKey('s', 'dp-test'), timeoutMs: 20_000 })));
}

describe('data-parallel steps', function () {
  this.timeout(60_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('2 ranks with batch 3 reach the weights of 1 rank with batch 6 after 10 steps, to 1e-5, and agree bit for bit', async () => {
    const size = 2;
    const transports = await openRanks(size);
    // Rank 0 starts from seed 1; rank 1 from seed 7, overwritten by the broadcast.
    const replicas = [buildModel(1), buildModel(7)];
    const single = buildModel(1);
    const optimizers = [...replicas, single].map(() => tf.train.rmsprop(0.01, 0.9, 0.9, 1.0));
    try {
      const parallel = replicas.map((model, rank) => new DataParallel(new Collectives(transports[rank]!), model));
      await Promise.all(parallel.map((p) => p.broadcastWeights()));
      assert.equal(weightsDigest(replicas[1]!), weightsDigest(single));
      const random = seededRandom(3);
      for (let step = 0; step < 10; step++) {
        const features = randomFloats(random, size * BATCH * FEATURES);
        const labels = Int32Array.from({ length: size * BATCH }, () => Math.floor(random() * CLASSES));
        const grads = replicas.map((model, rank) => computeGradients(model, batchOf(
          features.slice(rank * BATCH * FEATURES, (rank + 1) * BATCH * FEATURES), labels.slice(rank * BATCH, (rank + 1) * BATCH),
        ), LOSS, [BATCH, FEATURES]).gradients);
        const averaged = await Promise.all(parallel.map((p, rank) => p.averageGradients(grads[rank]!)));
        averaged.forEach((g, rank) => applyGradients(optimizers[rank]!, g));
        applyGradients(optimizers[2]!, computeGradients(single, batchOf(features, labels), LOSS, [size * BATCH, FEATURES]).gradients);
      }
      assert.equal(weightsDigest(replicas[0]!), weightsDigest(replicas[1]!), 'replicas differ');
      const worst = Math.max(...replicas[0]!.getWeights().map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, single.getWeights()[i]!))).dataSync()[0]!)));
      assert.ok(worst <= 1e-5, `replica and single rank differ by ${worst}`);
      const moved = Math.max(...single.getWeights().map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, buildModel(1).getWeights()[i]!))).dataSync()[0]!)));
      assert.ok(moved > 1e-3, 'the steps did not move the weights');
    } finally {
      await Promise.all(transports.map((t) => t.close()));
      for (const model of [...replicas, single]) model.dispose();
      for (const optimizer of optimizers) optimizer.dispose();
    }
  });
});
