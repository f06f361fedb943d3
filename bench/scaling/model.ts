// The alpha-beta model of a step that bench/scaling/predict.js extrapolates with: a node's own
// step (compute, data and, with allreduce, the optimizer update: what the one-node run measures)
// plus the exchange, fitted from bench/allreduce's timings on the cluster's network:
//   ring allreduce of B bytes over n workers: 2(n-1) alpha + 2(n-1)/n x B x beta
//   parameter servers, K of them, W workers:  a + W x B/K x b   (each server's link carries every
//     worker's share both ways, and it updates its share: the fan-in)
// Least squares on the timings; pure, so tested on figures with a known answer.
import { BenchError } from '../figures.js';

/** One timing of bench/allreduce's CSV: n ranks (ring) or n workers (ps, one server), B bytes, median ms. */
export interface ExchangeTiming {
  n: number;
  bytes: number;
  ms: number;
}

export interface LinearFit {
  /** Per message (ring: per latency step; ps: per exchange), ms. */
  alphaMs: number;
  /** Per byte, ms. */
  betaMsPerByte: number;
  points: number;
  /** Root-mean-square relative error of the fit on its own points. */
  rmsRelativeError: number;
}

/**
 * Least squares of ms = alpha x f(n) + beta x g(n, B), with alpha, beta >= 0, on relative errors
 * (each timing weighted by 1/ms^2): else the largest sizes decide alone and the latency of small
 * messages comes out wrong by multiples.
 */
function fitTwo(timings: readonly ExchangeTiming[], f: (t: ExchangeTiming) => number, g: (t: ExchangeTiming) => number, what: string): LinearFit {
  if (timings.length < 2) throw new BenchError(`${what}: ${timings.length} timing(s) in the allreduce CSV, and the fit needs 2 or more (run npm run bench:allreduce with two sizes or more)`);
  let sff = 0, sfg = 0, sgg = 0, sfy = 0, sgy = 0;
  for (const t of timings) {
    const [a, b, w] = [f(t), g(t), 1 / (t.ms * t.ms)];
    sff += w * a * a; sfg += w * a * b; sgg += w * b * b; sfy += w * a * t.ms; sgy += w * b * t.ms;
  }
  const det = sff * sgg - sfg * sfg;
  let alpha = det !== 0 ? (sfy * sgg - sgy * sfg) / det : 0;
  let beta = det !== 0 ? (sgy * sff - sfy * sfg) / det : sgy / sgg;
  // A negative latency (noise on small sizes) means "too small to see": fit the bandwidth alone.
  if (alpha < 0) [alpha, beta] = [0, sgy / sgg];
  if (beta < 0) [alpha, beta] = [sfy / sff, 0];
  const rms = Math.sqrt(timings.reduce((s, t) => s + ((alpha * f(t) + beta * g(t)) / t.ms - 1) ** 2, 0) / timings.length);
  return { alphaMs: alpha, betaMsPerByte: beta, points: timings.length, rmsRelativeError: rms };
}

export function fitRing(timings: readonly ExchangeTiming[]): LinearFit {
  return fitTwo(timings.filter((t) => t.n >= 2), (t) => 2 * (t.n - 1), (t) => (2 * (t.n - 1) / t.n) * t.bytes, 'ring allreduce (hpctrain-ring)');
}

/** bench/allreduce's hpctrain-ps rows: n workers and one server. */
export function fitServers(timings: readonly ExchangeTiming[]): LinearFit {
  return fitTwo(timings, () => 1, (t) => t.n * t.bytes, 'parameter servers (hpctrain-ps)');
}

export const ringMs = (fit: LinearFit, workers: number, bytes: number): number =>
  (workers < 2 ? 0 : 2 * (workers - 1) * fit.alphaMs + (2 * (workers - 1) / workers) * bytes * fit.betaMsPerByte);

export const serversMs = (fit: LinearFit, workers: number, servers: number, bytes: number): number => fit.alphaMs + workers * (bytes / servers) * fit.betaMsPerByte;

/** What one node does in a step, from the one-node allreduce run: its whole step, and the part that is the optimizer's update. */
export interface NodeStep {
  /** Per-worker batch of the run it was measured on. */
  batchSize: number;
  /** Compute and data, ms. */
  computeMs: number;
  /** The one-node run's "comm": no network, the optimizer's update of the weights, ms. */
  updateMs: number;
}

export interface StepPrediction {
  nodes: number;
  workers: number;
  batchSize: number;
  stepMs: number;
  commMs: number;
  imagesPerSecond: number;
}

/**
 * The predicted step at `nodes` nodes: weak scaling keeps the per-worker batch; strong scaling
 * splits `globalBatch` over the workers, compute shrinking in proportion (an assumption: small
 * batches use a GPU or core less well).
 */
export function predictStep(input: {
  nodes: number; ranksPerNode: number; servers: number; scaling: string; batchSize: number; globalBatch: number; gradientBytes: number;
  node: NodeStep; ring: LinearFit; ps?: LinearFit;
}): StepPrediction {
  const workers = input.nodes * input.ranksPerNode - input.servers;
  const batchSize = input.scaling === 'strong' ? input.globalBatch / workers : input.batchSize;
  const computeMs = input.node.computeMs * (batchSize / input.node.batchSize);
  let commMs: number;
  if (input.servers > 0) {
    if (!input.ps) throw new BenchError('the parameter-server prediction needs bench/allreduce\'s hpctrain-ps rows (run it without --no-ps)');
    commMs = serversMs(input.ps, workers, input.servers, input.gradientBytes);
  } else {
    commMs = input.node.updateMs + ringMs(input.ring, workers, input.gradientBytes);
  }
  const stepMs = computeMs + commMs;
  return { nodes: input.nodes, workers, batchSize, stepMs, commMs, imagesPerSecond: (workers * batchSize * 1000) / stepMs };
}
