// The allreduce strategy: every worker averages the gradients (and moving averages, and the step's
// figures) with the ring allreduce, regularizes, measures the global norm, and applies the
// optimizer itself. The averaged bytes are the same on every worker and the update is
// deterministic, so the replicas stay bitwise identical without ever exchanging weights after the
// start. One rank alone is this strategy with nothing to exchange.
import { assertFiniteStep } from '../optim/guard.js';
import { clipScale, decayRunsOf, regularizeGradients, sumOfSquares, type Run } from '../optim/regularize.js';
import { newOptimizerState, copyOptimizerState, slotNames, type OptimizerState } from '../optim/types.js';
import { localUpdater, type VectorUpdater } from '../optim/updater.js';
import type { Collectives } from './collectives.js';
import type { ExchangeConfig, GradientExchange, StepInput, StepOutput } from './types.js';

export class AllreduceExchange implements GradientExchange {
  readonly strategy = 'allreduce' as const;
  private state: OptimizerState;
  private readonly decayRuns: Run[];

  /** `updater` applies the update (e.g. split over the rank's compute threads); this thread by default. */
  constructor(private readonly collectives: Collectives, private readonly config: ExchangeConfig, private readonly updater: VectorUpdater = localUpdater) {
    this.state = newOptimizerState(config.optimizer.name, config.trainableLength, updater.allocate);
    this.decayRuns = decayRunsOf(config.variableLengths, config.decayed);
  }

  get workers(): number {
    return this.collectives.size;
  }

  get workerIndex(): number {
    return this.collectives.rank;
  }

  async start(params: Float32Array, state?: OptimizerState): Promise<void> {
    await this.collectives.broadcast(params, 0);
    // Only the first worker's state counts (it read the checkpoint): it says whether there is one.
    const withState = Float32Array.of(state ? 1 : 0);
    await this.collectives.broadcast(withState, 0);
    const { name } = this.config.optimizer;
    this.state = newOptimizerState(name, this.config.trainableLength, this.updater.allocate);
    if (withState[0] === 0) return;
    for (const slot of slotNames(name)) {
      if (this.workerIndex === 0) this.state[slot]!.set(state![slot]!);
      await this.collectives.broadcast(this.state[slot]!, 0);
    }
  }

  async step(params: Float32Array, input: StepInput): Promise<StepOutput> {
    const { trainableLength, totalLength, clipNorm, optimizer } = this.config;
    const averaged = input.local;
    const stats = Float32Array.from(input.stats);
    await Promise.all([this.collectives.allreduceMean(averaged), this.collectives.allreduceMean(stats)]);
    const gradients = averaged.subarray(0, trainableLength);
    regularizeGradients(optimizer, gradients, params, this.decayRuns);
    const gradNorm = Math.sqrt(sumOfSquares(gradients));
    assertFiniteStep(input.step, gradNorm, stats[0]!);
    await this.updater.update({
      optimizer, params, gradients, state: this.state, decayRuns: this.decayRuns,
      args: { learningRate: input.learningRate, step: input.step, scale: clipScale(gradNorm, clipNorm) },
    });
    params.set(averaged.subarray(trainableLength, totalLength), trainableLength);
    const optimizerState = input.captureState ? copyOptimizerState(this.state) : undefined;
    return { gradNorm, stats, optimizerState };
  }

  async finish(): Promise<void> {
    // Nothing to stop: the ranks' closing barrier is the caller's.
  }
}
