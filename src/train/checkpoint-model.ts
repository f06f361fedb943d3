// The model a training checkpoint holds: found in a run directory (or given as a file), rebuilt
// from its meta (image size, classes, auxiliary head, seed), checked against the layout digest the
// run wrote, with the trained weights or their moving average loaded. Of a checkpoint's arrays it
// reads only 'weights' and 'ema': the optimizer's state is no business of a finished model.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { listCheckpoints, loadNewestCheckpoint, readCheckpoint, type CheckpointState } from '../checkpoint/checkpoint.js';
import { CheckpointError } from '../errors.js';
import { buildInceptionV3, type InceptionV3Args } from '../model/inception-v3.js';
import { layoutDigest, parameterLayout, writeParameters } from '../compute/parameters.js';

export interface FoundCheckpoint {
  path: string;
  state: CheckpointState;
}

/** What `hpctrain train` records of the model in every checkpoint's meta. */
export interface CheckpointModelMeta extends InceptionV3Args {
  /** Class names (wnids) by index; null when the data named none (synthetic, TFRecord). */
  classes: string[] | null;
  /** sha256 of the parameter layout's signature. */
  layout: string;
}

export const WEIGHT_CHOICES = ['auto', 'ema', 'trained'] as const;
export type WeightChoice = (typeof WEIGHT_CHOICES)[number];

/**
 * The newest checkpoint that verifies in RUN_DIR/checkpoints (or in the directory given, if it
 * holds checkpoints itself), or the checkpoint file given. Corrupt ones skipped go to `log`.
 */
export async function findCheckpoint(source: string, log: (line: string) => void): Promise<FoundCheckpoint> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(source)).isDirectory();
  } catch (cause) {
    throw new CheckpointError(`${source} does not exist`, { cause, hint: 'give a run directory (runs/<job id>) or a checkpoint file (runs/<job id>/checkpoints/ckpt-*.hpct)' });
  }
  if (!isDirectory) return { path: source, state: await readCheckpoint(source) };
  const nested = join(source, 'checkpoints');
  const dir = (await listCheckpoints(nested)).length > 0 ? nested : source;
  const found = await loadNewestCheckpoint(dir, log);
  if (found) return found;
  const listed = await listCheckpoints(dir);
  throw new CheckpointError(listed.length > 0 ? `no checkpoint in ${dir} verifies` : `no checkpoint in ${source} (nor in ${nested})`, {
    hint: listed.length > 0 ? 'every one is damaged (see above)' : 'give the run directory of a `hpctrain train` run that wrote a checkpoint (it writes one at the end)',
  });
}

/** The model's part of a checkpoint's meta, checked; throws a CheckpointError naming what is missing. */
export function readCheckpointModelMeta(path: string, meta: Record<string, unknown>): CheckpointModelMeta {
  const notOurs = (what: string) => new CheckpointError(`${path} was not written by \`hpctrain train\` as this version writes it: ${what}`, {
    hint: 'export a checkpoint of this hpctrain version, or export with the version that wrote it',
  });
  const whole = (key: string): number => {
    const value = meta[key];
    if (!Number.isSafeInteger(value)) throw notOurs(`its meta has no ${key}`);
    return value as number;
  };
  const { auxLogits = false, classes = null, layout } = meta;
  const numClasses = whole('numClasses');
  if (typeof auxLogits !== 'boolean') throw notOurs(`its meta's auxLogits is ${JSON.stringify(auxLogits)}`);
  if (typeof layout !== 'string') throw notOurs('its meta has no layout digest');
  if (classes !== null && !(Array.isArray(classes) && classes.length === numClasses && classes.every((name) => typeof name === 'string'))) {
    throw notOurs(`its meta's classes are not ${numClasses} names`);
  }
  return { imageSize: whole('imageSize'), numClasses, seed: whole('seed'), auxLogits, classes: classes as string[] | null, layout };
}

/** The checkpoint's trained weights or their moving average; auto takes the average when there is one. */
export function chooseWeights(found: FoundCheckpoint, choice: WeightChoice): { values: Float32Array; kind: 'ema' | 'trained' } {
  const { ema, weights } = found.state.arrays;
  if (!weights) throw new CheckpointError(`${found.path} holds no "weights"`, { hint: 'it was not written by `hpctrain train`' });
  if (choice === 'trained' || (choice === 'auto' && !ema)) return { values: weights, kind: 'trained' };
  if (!ema) {
    throw new CheckpointError(`${found.path} holds no moving average of the weights ("ema"): the run was trained with --ema-decay 0`, {
      hint: 'use --weights trained (or auto)',
    });
  }
  return { values: ema, kind: 'ema' };
}

/**
 * buildInceptionV3 as the run built it, holding `values` (a full parameter vector: trainable
 * weights, then batch norm's moving averages). Call it before building any other model in the
 * process: tfjs numbers the variables of a second build (conv2d_1/kernel_1), and the layout
 * signature, which the run computed for its first build, names them.
 */
export function loadCheckpointModel(path: string, meta: CheckpointModelMeta, values: Float32Array): tfl.LayersModel {
  const model = buildInceptionV3(meta);
  try {
    const layout = parameterLayout(model);
    if (layoutDigest(layout) !== meta.layout) {
      throw new CheckpointError(`${path} does not hold the variables of the model its meta describes (Inception-V3 ${meta.imageSize}x${meta.imageSize}, ` +
        `${meta.numClasses} classes${meta.auxLogits ? ', auxiliary head' : ''}): the layout digests differ`, {
        hint: 'its meta was changed, or it was written by a version of hpctrain that builds another model; export it with that version',
      });
    }
    if (values.length !== layout.totalLength) {
      throw new CheckpointError(`${path} holds ${values.length} values for a model of ${layout.totalLength}`, { hint: 'it was not written by `hpctrain train`' });
    }
    writeParameters(model, layout, values);
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
