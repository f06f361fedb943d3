// `hpctrain train`'s plan of the run: how many steps, and the effective recipe (optimizer,
// schedule, regularization) from --recipe and the flags that override it.
import { OptionsError } from '../errors.js';
import type { OptimizerName } from '../optim/types.js';
import type { OptionValues } from '../options.js';
import type { Recipe, RecipeName, RecipeOverrides } from '../train/recipe.js';
import type { ScheduleKind } from '../train/schedule.js';

export interface RunPlan {
  maxSteps: number;
  globalBatch: number;
  recipe: Recipe;
  /** Evaluate after every this many steps, and at the end; 0: at the end only. */
  evalEverySteps: number;
}

export async function planRun(values: OptionValues, workers: number, stepsPerEpoch: number): Promise<RunPlan> {
  const { resolveRecipe } = await import('../train/recipe.js');
  const globalBatch = (values['batch-size'] as number) * workers;
  const maxSteps = (values.steps as number) || Math.ceil((values.epochs as number) * stepsPerEpoch);
  if (maxSteps === 0) throw new OptionsError('nothing to do: --steps 0 and --epochs 0');
  const recipe = resolveRecipe(values.recipe as RecipeName, readRecipeOverrides(values), { globalBatch, stepsPerEpoch, totalSteps: maxSteps });
  return { maxSteps, globalBatch, recipe, evalEverySteps: evalEverySteps(values['eval-every'] as number, stepsPerEpoch) };
}

/** The recipe flags given (or set through HPCTRAIN_*); the rest come from --recipe. */
function readRecipeOverrides(values: OptionValues): RecipeOverrides {
  const number = (name: string) => values[name] as number | undefined;
  return {
    optimizer: values.optimizer as OptimizerName | undefined, learningRate: number('learning-rate'), warmupEpochs: number('warmup-epochs'),
    schedule: values['lr-schedule'] as ScheduleKind | undefined, decayRate: number('lr-decay'), decayEpochs: number('lr-decay-epochs'),
    clipNorm: number('clip-norm'), labelSmoothing: number('label-smoothing'), auxLossWeight: number('aux-loss-weight'), emaDecay: number('ema-decay'),
    rho: number('rho'), momentum: number('momentum'), nesterov: values.nesterov as boolean | undefined, beta1: number('beta1'), beta2: number('beta2'),
    epsilon: number('epsilon'), weightDecay: number('weight-decay'),
  };
}

/** --eval-every E epochs as steps: at least one step when E > 0; 0 (at the end only) when E is 0. */
function evalEverySteps(epochs: number, stepsPerEpoch: number): number {
  return epochs > 0 ? Math.max(1, Math.round(epochs * stepsPerEpoch)) : 0;
}
