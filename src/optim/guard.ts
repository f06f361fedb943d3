// The numerical guard of a step: checked on the averaged figures, before the update, so that a
// step that went wrong is never applied, and the same on every worker and server (they all see
// the same averaged values), so that they all stop after the same step.
import { NumericalError } from '../errors.js';

const HINT =
  'nothing of this step was applied or checkpointed; lower --learning-rate (or add --clip-norm, or a longer --warmup-epochs), ' +
  'then resume from the last checkpoint (the default --resume auto)';

/** Throws a NumericalError when the averaged loss or gradient norm of step `step` (0-based) is not finite. */
export function assertFiniteStep(step: number, gradNorm: number, loss: number): void {
  if (Number.isFinite(gradNorm) && Number.isFinite(loss)) return;
  const what = Number.isFinite(loss) ? `the global norm of the averaged gradients is ${gradNorm}` : `the loss averaged over the workers is ${loss}`;
  throw new NumericalError(`step ${step + 1}: ${what}`, { hint: HINT, everyWorker: true });
}

/** The index of the first non-finite value, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}
