// Data parallelism through the trainer's own path (gradients -> flat vector -> exchange -> model)
// on real sockets, with each strategy: N workers with batch B each take the steps of one worker
// with batch N*B, and every replica holds the same bytes.
import assert from 'node:assert/strict';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from '../../src/backend/tf.js';
import { Collectives } from '../../src/comm/collectives.js';
import { deriveCommKey } from '../../src/comm/frames.js';
import { subgroup } from '../../src/comm/group.js';
import { runParameterServer } from '../../src/comm/parameter-server.js';
import { PsExchange } from '../../src/comm/ps-client.js';
import { AllreduceExchange } from '../../src/comm/ring-allreduce.js';
import { type Peer, Transport } from '../../src/comm/transport.js';
import type { ExchangeConfig, GradientExchange, Strategy } from '../../src/comm/types.js';
import { decayedVariables, packStep, parameterLayout, readParameters, writeParameters, type ParameterLayout } from '../../src/compute/parameters.js';
import type { OptimizerName } from '../../src/optim/types.js';
import { defaultOptimizer } from '../../src/train/recipe.js';
import { computeGradients } from '../../src/compute/trainer.js';
import { weightsDigest } from '../../src/compute/weights.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { randomFloats, seededRandom } from '../helpers/random.js';

const FEATURES = 12;
const CLASSES = 4;
const BATCH = 3;
const WORKERS = 2;
const LOSS = { numClasses: CLASSES, labelSmoothing: 0.1, auxLossWeight: 0 };
const SOLO = { rank: 0, size: 1, send: () => Promise.reject(new Error('alone')), receive: () => Promise.reject(new Error('alone')) };

/** A small model without batch norm, the same weights for every seed given. */
function buildModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [FEATURES] });
  const hidden = tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }).apply(input) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }).apply(hidden) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

function configOf(layout: ParameterLayout, optimizer: OptimizerName): ExchangeConfig {
  return {
    trainableLength: layout.trainableLength, totalLength: layout.totalLength, variableLengths: layout.entries.map((e) => e.length),
    decayed: decayedVariables(layout), optimizer: { ...defaultOptimizer(optimizer), weightDecay: 0.01 }, clipNorm: 2, statsLength: 1,
  };
}

/** The trainer's step: local gradients into the flat vector, exchanged, written back to the model. */
async function step(model: tfl.LayersModel, exchange: GradientExchange, params: Float32Array, features: Float32Array, labels: Int32Array, n: number): Promise<void> {
  const layout = parameterLayout(model);
  const { gradients } = computeGradients(model, { images: features, labels, batchSize: labels.length, imageSize: 0 }, LOSS, { inputShape: [labels.length, FEATURES] });
  const local = new Float32Array(layout.totalLength);
  packStep(gradients, model, layout, local);
  await exchange.step(params, { step: n, learningRate: 0.01, local, stats: new Float32Array(1) });
  writeParameters(model, layout, params);
}

async function openTransports(size: number): Promise<Transport[]> {
  const base = await getFreePortBlock(size);
  const peers: Peer[] = Array.from({ length: size }, (_, rank) => ({ rank, host: `node${rank}`, address: '127.0.0.1', port: base + rank }));
  return Promise.all(peers.map((p) => Transport.open({ rank: p.rank, peers, key: deriveCommKey('s', 'dp-test'), timeoutMs: 20_000 })));
}

for (const [strategy, optimizer] of [['allreduce', 'rmsprop'], ['allreduce', 'adamw'], ['ps', 'rmsprop'], ['ps', 'adamw']] as [Strategy, OptimizerName][]) {
  describe(`data-parallel steps (${strategy}, ${optimizer})`, function () {
    this.timeout(60_000);
    before(async () => {
      await tf.setBackend('cpu');
    });

    it(`${WORKERS} workers with batch ${BATCH} reach the weights of 1 worker with batch ${WORKERS * BATCH} after 10 steps, to 1e-5, and agree bit for bit`, async () => {
      const servers = strategy === 'ps' ? 1 : 0;
      const transports = await openTransports(servers + WORKERS);
      const workerRanks = Array.from({ length: WORKERS }, (_, w) => servers + w);
      // Worker 0 starts from seed 1; worker 1 from seed 7, replaced at the start.
      const replicas = [buildModel(1), buildModel(7)];
      const single = buildModel(1);
      try {
        const config = configOf(parameterLayout(single), optimizer);
        const serving = servers > 0
          ? runParameterServer({ link: transports[0]!, firstWorker: servers, markDeparted: (r) => transports[0]!.markDeparted(r) })
          : undefined;
        const exchanges: GradientExchange[] = workerRanks.map((rank) => (strategy === 'ps'
          ? new PsExchange({ link: transports[rank]!, servers: [0], workers: workerRanks, config, placement: 'size', markDeparted: (r) => transports[rank]!.markDeparted(r) })
          : new AllreduceExchange(new Collectives(subgroup(transports[rank]!, workerRanks)), config)));
        const soloExchange = new AllreduceExchange(new Collectives(SOLO), config);
        const params = replicas.map((model) => {
          const values = new Float32Array(config.totalLength);
          readParameters(model, parameterLayout(model), values);
          return values;
        });
        const singleParams = new Float32Array(config.totalLength);
        readParameters(single, parameterLayout(single), singleParams);
        await Promise.all([...exchanges.map((e, w) => e.start(params[w]!)), soloExchange.start(singleParams)]);
        replicas.forEach((model, w) => writeParameters(model, parameterLayout(model), params[w]!));
        assert.equal(weightsDigest(replicas[1]!), weightsDigest(single));
        const random = seededRandom(3);
        for (let n = 0; n < 10; n++) {
          const features = randomFloats(random, WORKERS * BATCH * FEATURES);
          const labels = Int32Array.from({ length: WORKERS * BATCH }, () => Math.floor(random() * CLASSES));
          await Promise.all(replicas.map((model, w) => step(model, exchanges[w]!, params[w]!,
            features.slice(w * BATCH * FEATURES, (w + 1) * BATCH * FEATURES), labels.slice(w * BATCH, (w + 1) * BATCH), n)));
          await step(single, soloExchange, singleParams, features, labels, n);
        }
        await Promise.all(exchanges.map((e) => e.finish()));
        await serving;
        assert.equal(weightsDigest(replicas[0]!), weightsDigest(replicas[1]!), 'replicas differ');
        const worst = Math.max(...replicas[0]!.getWeights().map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, single.getWeights()[i]!))).dataSync()[0]!)));
        assert.ok(worst <= 1e-5, `replica and single worker differ by ${worst}`);
        const moved = Math.max(...single.getWeights().map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, buildModel(1).getWeights()[i]!))).dataSync()[0]!)));
        assert.ok(moved > 1e-3, 'the steps did not move the weights');
      } finally {
        await Promise.all(transports.map((t) => t.close()));
        for (const model of [...replicas, single]) model.dispose();
      }
    });
  });
}
