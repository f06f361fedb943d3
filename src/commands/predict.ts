// `hpctrain predict`: an exported model (hpctrain export) on images, each decoded and preprocessed
// by the very function the evaluation's decoding threads run (central crop, resize, [-1, 1]), on
// the backend training would pick; prints each image's top classes with their probabilities.
import { stat } from 'node:fs/promises';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { BACKEND_CHOICES, type BackendName } from '../backend/select.js';
import { DataError, ModelFilesError, OptionsError } from '../errors.js';
import type { OptionValues } from '../options.js';
import type { Command, CommandContext } from './types.js';

const USAGE = 'hpctrain predict MODEL_DIR IMAGE... [--top K] [--json] [--backend NAME]';
/** Images decoded and run at once: bounds the memory whatever the number of images. */
const CHUNK = 8;

export interface Prediction {
  image: string;
  top: { index: number; label: string; probability: number }[];
}

export const predictCommand: Command = {
  spec: {
    name: 'predict',
    usage: USAGE,
    summary:
      'Classify images with a model written by `hpctrain export`: each image is preprocessed as the\n' +
      'evaluation of `hpctrain train` does (central 87.5% crop, resize, RGB in [-1, 1]) and its top K\n' +
      'classes are printed with their names (labels.txt) and probabilities.',
    options: [
      { name: 'top', alias: 'k', type: 'integer', default: 5, min: 1, valueName: 'K', describe: 'how many classes to print per image (at most the number of classes)' },
      { name: 'json', type: 'boolean', default: false, describe: 'print one JSON document {model, backend, predictions: [{image, top: [{index, label, probability}]}]}' },
      { name: 'backend', type: 'string', env: 'HPCTRAIN_BACKEND', default: 'auto', choices: BACKEND_CHOICES, valueName: 'NAME',
        describe: 'tensor backend; auto takes tfjs-node-gpu (with a GPU), tfjs-node, wasm, cpu: the first that works' },
    ],
    details: 'Images are JPEG or PNG files (whatever sharp decodes). The backend chosen is reported on stderr.',
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    const [modelDir, ...images] = positionals;
    if (modelDir === undefined) throw new OptionsError('predict needs a model directory and images', USAGE);
    if (images.length === 0) throw new OptionsError(`predict needs images to classify after ${modelDir}`, USAGE);
    await checkImagesExist(images);

    const { readGpus } = await import('../backend/gpus.js');
    const { selectBackend } = await import('../backend/select.js');
    const backend = await selectBackend(values.backend as BackendName | 'auto', (await readGpus()).gpus.length);
    for (const attempt of backend.attempts) context.io.stderr(`backend ${attempt.name}: ${attempt.ok ? 'chosen' : 'passed over'}: ${attempt.reason}\n`);

    const { model, labels, imageSize } = await loadExportedModel(modelDir);
    try {
      const k = Math.min(values.top as number, labels.length);
      const predictions: Prediction[] = [];
      for (let start = 0; start < images.length; start += CHUNK) {
        const chunk = images.slice(start, start + CHUNK);
        const rows = await classify(model, await preprocessImages(chunk, imageSize), chunk.length, imageSize);
        rows.forEach((row, i) => predictions.push({ image: chunk[i]!, top: topClasses(row, k, labels) }));
        if (!values.json) for (const prediction of predictions.slice(start)) context.stdout(formatPrediction(prediction));
      }
      if (values.json) context.stdout(JSON.stringify({ model: modelDir, backend: backend.name, predictions }) + '\n');
    } finally {
      model.dispose();
    }
    return 0;
  },
};

async function checkImagesExist(images: readonly string[]): Promise<void> {
  for (const image of images) {
    let isFile = false;
    try {
      isFile = (await stat(image)).isFile();
    } catch {
      throw new DataError(`image ${image} does not exist`, { hint: 'check the path' });
    }
    if (!isFile) throw new DataError(`image ${image} is not a file`, { hint: 'give image files (JPEG or PNG), not directories' });
  }
}

/** The model in dir, checked to be a classifier of square RGB images, and its class names. */
async function loadExportedModel(dir: string): Promise<{ model: LayersModel; labels: string[]; imageSize: number }> {
  const tfl = await import('@tensorflow/tfjs-layers');
  const { modelFiles, readLabels } = await import('../model/model-files.js');
  let model: LayersModel;
  try {
    model = await tfl.loadLayersModel(modelFiles(dir));
  } catch (error) {
    if (error instanceof ModelFilesError) throw error;
    throw new ModelFilesError(`the model in ${dir} could not be loaded: ${(error as Error).message}`, {
      cause: error, hint: 'is it a model written by `hpctrain export`? export it again',
    });
  }
  try {
    const input = model.inputs[0]!.shape;
    const output = model.outputs[0]!.shape;
    const imageSize = input[1];
    const classes = output[1];
    if (model.inputs.length !== 1 || model.outputs.length !== 1 || input.length !== 4 || typeof imageSize !== 'number' || input[2] !== imageSize || input[3] !== 3 ||
      output.length !== 2 || typeof classes !== 'number') {
      throw new ModelFilesError(`the model in ${dir} takes ${JSON.stringify(input)} and gives ${JSON.stringify(output)}: not a classifier of square RGB images`, {
        hint: 'hpctrain predict runs models written by `hpctrain export`',
      });
    }
    const labels = await readLabels(dir);
    if (labels.length !== classes) {
      throw new ModelFilesError(`labels.txt in ${dir} names ${labels.length} classes; the model has ${classes}`, { hint: 'the files are of different exports: export the model again' });
    }
    return { model, labels, imageSize };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** NHWC floats of the images, each decoded, cropped and scaled as the evaluation's decoding threads do it. */
async function preprocessImages(images: readonly string[], imageSize: number): Promise<Float32Array> {
  const { runDecodeTask } = await import('../data/decode.js');
  const values = imageSize * imageSize * 3;
  const output = new SharedArrayBuffer(images.length * values * Float32Array.BYTES_PER_ELEMENT);
  for (const [i, path] of images.entries()) {
    const result = await runDecodeTask({ id: i, location: { kind: 'file', path }, crop: { mode: 'eval' }, imageSize, output, outputOffset: i * values });
    if (!result.ok) throw new DataError(`image ${path} cannot be decoded: ${result.reason}`, { hint: 'hpctrain predict reads JPEG and PNG images' });
  }
  return new Float32Array(output);
}

async function classify(model: LayersModel, images: Float32Array, count: number, imageSize: number): Promise<Float32Array[]> {
  const { tf } = await import('../backend/tf.js');
  const probabilities = tf.tidy(() => model.predict(tf.tensor4d(images, [count, imageSize, imageSize, 3])) as import('@tensorflow/tfjs-core').Tensor);
  try {
    const flat = (await probabilities.data()) as Float32Array;
    const classes = flat.length / count;
    return Array.from({ length: count }, (_, i) => flat.subarray(i * classes, (i + 1) * classes));
  } finally {
    probabilities.dispose();
  }
}

/** The k most probable classes, most probable first; of equal ones the lower index first. */
export function topClasses(probabilities: ArrayLike<number>, k: number, labels: readonly string[]): Prediction['top'] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i).sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return order.slice(0, k).map((index) => ({ index, label: labels[index]!, probability: probabilities[index]! }));
}

function formatPrediction(prediction: Prediction): string {
  const width = Math.max(...prediction.top.map((t) => t.label.length));
  const lines = prediction.top.map((t, rank) => `  ${rank + 1}. ${t.label.padEnd(width)}  ${t.probability.toFixed(6)}`);
  return `${prediction.image}\n${lines.join('\n')}\n`;
}
