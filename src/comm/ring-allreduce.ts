// The allreduce strategy: every worker averages the gradients (and moving averages, and the step's
// figures) with the ring allreduce, measures the global norm and applies RMSProp itself. The
// averaged bytes are the same on every worker and the update is deterministic, so the replicas
// stay bitwise identical without ever exchanging weights after the start. One rank alone is this
// strategy with nothing to exchange.
import { clipScale, newRmsPropState, rmspropUpdate, sumOfSquares, type RmsPropState } from '../train/rmsprop.js';
import type { Collectives } from './collectives.js';
import type { ExchangeConfig, GradientExchange, StepInput, StepOutput } from './types.js';

export class AllreduceExchange implements GradientExchange {
  readonly strategy = 'allreduce' as const;
  private state: RmsPropState;

  constructor(private readonly collectives: Collectives, private readonly config: ExchangeConfig) {
    this.state = newRmsPropState(config.trainableLength);
  }

  get workers(): number {
    return this.collectives.size;
  }

  get workerIndex(): number {
    return this.collectives.rank;
  }

  async start(params: Float32Array, state?: RmsPropState): Promise<void> {
    await this.collectives.broadcast(params, 0);
    // Only the first worker's state counts (it read the checkpoint): it says whether there is one.
    const withState = Float32Array.of(state ? 1 : 0);
    await this.collectives.broadcast(withState, 0);
    if (withState[0] === 0) {
      this.state = newRmsPropState(this.config.trainableLength);
      return;
    }
    this.state = this.workerIndex === 0 && state ? { ms: state.ms.slice(), mom: state.mom.slice() } : newRmsPropState(this.config.trainableLength);
    await this.collectives.broadcast(this.state.ms, 0);
    await this.collectives.broadcast(this.state.mom, 0);
  }

  async step(params: Float32Array, input: StepInput): Promise<StepOutput> {
    const { trainableLength, totalLength, clipNorm, rmsprop } = this.config;
    const averaged = input.local;
    const stats = Float32Array.from(input.stats);
    await Promise.all([this.collectives.allreduceMean(averaged), this.collectives.allreduceMean(stats)]);
    const gradNorm = Math.sqrt(sumOfSquares(averaged, 0, trainableLength));
    rmspropUpdate(params, averaged, this.state, rmsprop, input.learningRate, clipScale(gradNorm, clipNorm));
    params.set(averaged.subarray(trainableLength, totalLength), trainableLength);
    const optimizerState = input.captureState ? { ms: this.state.ms.slice(), mom: this.state.mom.slice() } : undefined;
    return { gradNorm, stats, optimizerState };
  }

  async finish(): Promise<void> {
    // Nothing to stop: the ranks' closing barrier is the caller's.
  }
}
