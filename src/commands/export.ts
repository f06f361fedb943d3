// `hpctrain export`: the trained model of a run as a TensorFlow.js layers model that plain
// TensorFlow.js loads (tfjs-node's tf.loadLayersModel('file://DIR/model.json'), or a browser's),
// without hpctrain's layer classes: the checkpoint's weights go into the same network built from
// tfjs-layers' standard layers, with a softmax on 'predictions' and without the auxiliary head.
// Beside model.json and weights.bin: labels.txt (the class names by index) and preprocessing.json
// (what to feed it). tfjs runs on the cpu backend: building and copying need no speed.
import { resolve } from 'node:path';
import { OptionsError } from '../errors.js';
import type { OptionValues } from '../options.js';
import type { CheckpointModelMeta, FoundCheckpoint, WeightChoice } from '../train/checkpoint-model.js';
import type { Command, CommandContext } from './types.js';

const USAGE = 'hpctrain export RUN_DIR|CHECKPOINT --output DIR [--weights auto|ema|trained]';
export const PREPROCESSING_FILE = 'preprocessing.json';

export const exportCommand: Command = {
  spec: {
    name: 'export',
    usage: USAGE,
    summary:
      'Write the model of a training run as a TensorFlow.js layers model (DIR/model.json and\n' +
      'DIR/weights.bin, as tfjs-node\'s file:// handler saves them) that plain TensorFlow.js loads without\n' +
      'hpctrain: standard Conv2D, BatchNormalization and Activation layers named as Keras names them, a\n' +
      'softmax on \'predictions\' (it outputs probabilities), no auxiliary head. Beside it labels.txt (the\n' +
      'class names by index) and preprocessing.json (image size, central 87.5% crop, resize, RGB in [-1, 1]).',
    options: [
      { name: 'output', alias: 'o', type: 'string', valueName: 'DIR', describe: 'the directory to write the model to (created if need be; its model files are replaced)' },
      { name: 'weights', type: 'string', default: 'auto', choices: ['auto', 'ema', 'trained'], valueName: 'WHICH',
        describe: 'ema: the moving average of the weights; trained: the weights themselves; auto: ema when the checkpoint has one' },
    ],
    details:
      'RUN_DIR is a `hpctrain train` run directory: its newest checkpoint that verifies is exported (a damaged\n' +
      'one is skipped with a line on stderr). CHECKPOINT is one checkpoint file, runs/<id>/checkpoints/ckpt-*.hpct.\n' +
      'Try the result with `hpctrain predict DIR IMAGE...`.',
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    const [source, ...extra] = positionals;
    if (source === undefined) throw new OptionsError('export needs a run directory or a checkpoint file', USAGE);
    if (extra.length > 0) throw new OptionsError(`unexpected argument "${extra[0]}" after ${source}`, USAGE);
    const output = values.output as string | undefined;
    if (output === undefined) throw new OptionsError('export needs --output DIR, the directory to write the model to', USAGE);

    const { tf } = await import('../backend/tf.js');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const { chooseWeights, findCheckpoint, readCheckpointModelMeta } = await import('../train/checkpoint-model.js');
    const found = await findCheckpoint(source, (line) => context.io.stderr(`${line}\n`));
    const meta = readCheckpointModelMeta(found.path, found.state.meta);
    const weights = chooseWeights(found, values.weights as WeightChoice);
    context.stdout(`checkpoint ${found.path}: step ${found.state.step}, Inception-V3 ${meta.imageSize}x${meta.imageSize}, ${meta.numClasses} classes` +
      `${meta.auxLogits ? ', auxiliary head (not exported)' : ''}\n`);
    context.stdout(`weights: ${describeWeights(weights.kind, values.weights as WeightChoice)}\n`);
    const bytes = await writeExport(found, meta, weights, resolve(output));
    context.stdout(`wrote ${output}: model.json, weights.bin (${(bytes / 1e6).toFixed(1)} MB), labels.txt (${meta.numClasses} classes), ${PREPROCESSING_FILE}\n`);
    return 0;
  },
};

function describeWeights(kind: 'ema' | 'trained', choice: WeightChoice): string {
  const what = kind === 'ema' ? 'the moving average of the weights' : 'the trained weights';
  if (choice !== 'auto') return `${what} (--weights ${choice})`;
  return kind === 'ema' ? `${what} (auto: the checkpoint has one; --weights trained for the trained weights)` : `${what} (auto: the checkpoint has no moving average)`;
}

/** Writes the model files, labels.txt and preprocessing.json to dir; returns the weights' size in bytes. */
async function writeExport(found: FoundCheckpoint, meta: CheckpointModelMeta, weights: { values: Float32Array; kind: 'ema' | 'trained' }, dir: string): Promise<number> {
  const { loadCheckpointModel } = await import('../train/checkpoint-model.js');
  const { buildInferenceInceptionV3 } = await import('../model/inception-v3.js');
  const { copyWeightsByName } = await import('../model/copy-weights.js');
  const { modelFiles, writeJsonFile, writeLabels } = await import('../model/model-files.js');
  // The run's own model first: its variable names are the layout's (see loadCheckpointModel).
  const trained = loadCheckpointModel(found.path, meta, weights.values);
  const exported = buildInferenceInceptionV3(meta);
  try {
    try {
      copyWeightsByName(trained, exported, (layerName) => layerName.startsWith('aux_'));
    } finally {
      trained.dispose();
    }
    exported.setUserDefinedMetadata({ hpctrain: { checkpoint: resolve(found.path), step: found.state.step, weights: weights.kind } });
    const saved = await exported.save(modelFiles(dir));
    await writeLabels(dir, meta.classes ?? Array.from({ length: meta.numClasses }, (_, i) => String(i)));
    await writeJsonFile(dir, PREPROCESSING_FILE, await describeInput(meta));
    return saved.modelArtifactsInfo.weightDataBytes ?? 0;
  } finally {
    exported.dispose();
  }
}

/** preprocessing.json: what the model expects, for a user who feeds it outside hpctrain. */
async function describeInput(meta: CheckpointModelMeta): Promise<Record<string, unknown>> {
  const { EVAL_CENTRAL_FRACTION } = await import('../data/preprocess.js');
  const size = meta.imageSize;
  return {
    imageSize: size,
    numClasses: meta.numClasses,
    input: { name: 'input_1', shape: [null, size, size, 3], dtype: 'float32', layout: 'NHWC', channels: 'RGB', range: [-1, 1] },
    preprocessing: {
      decode: 'JPEG or PNG to 8-bit sRGB without alpha; EXIF orientation ignored, as TensorFlow\'s decode_jpeg does',
      centralCropFraction: EVAL_CENTRAL_FRACTION,
      crop: `the central ${EVAL_CENTRAL_FRACTION * 100}% of each side, as tf.image.central_crop(image, ${EVAL_CENTRAL_FRACTION}): a margin of trunc((side - ${EVAL_CENTRAL_FRACTION} * side) / 2) pixels at both ends`,
      resize: `to ${size}x${size}, bilinear (a triangle filter), not keeping the aspect ratio`,
      scale: 'v / 127.5 - 1 for each 8-bit channel value v: [0, 255] -> [-1, 1]',
    },
    output: { name: 'predictions', shape: [null, meta.numClasses], meaning: `probabilities (softmax) over the ${meta.numClasses} classes; class i is line i + 1 of labels.txt` },
    labels: 'labels.txt',
  };
}
