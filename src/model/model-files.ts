// An exported model as files, in the format tfjs-node's file:// handler writes and reads:
// DIR/model.json ({modelTopology, weightsManifest: [{paths: ['weights.bin'], weights}], format
// 'layers-model', generatedBy, convertedBy, userDefinedMetadata}) and DIR/weights.bin, the weights
// in manifest order. tfjs-node's tf.loadLayersModel('file://DIR/model.json') reads it as it is,
// and so does any handler that fetches the files (a browser's tf.loadLayersModel('URL/model.json')).
// Beside them: labels.txt, the class names by index. Each file appears under its name only once it
// is all on disk (temporary name, then rename), model.json last.
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { tf } from '../backend/tf.js';
import { ModelFilesError } from '../errors.js';

export const MODEL_JSON_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
export const LABELS_FILE = 'labels.txt';

const EXPORT_HINT = 'export a model with `hpctrain export RUN_DIR --output DIR`';

/** A tf.io.IOHandler for DIR (or DIR/model.json): model.save(modelFiles(dir)), tfl.loadLayersModel(modelFiles(dir)). */
export function modelFiles(path: string): tf.io.IOHandler {
  return {
    save: async (artifacts) => saveModelFiles(resolve(path), artifacts),
    load: async () => loadModelFiles(await modelJsonPath(path)),
  };
}

async function saveModelFiles(dir: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer || artifacts.modelTopology == null) {
    throw new Error('modelFiles saves layers models, whose topology is JSON');
  }
  const buffers = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  await makeDirectory(dir);
  await writeFileAtomically(join(dir, WEIGHTS_FILE), buffers.map((buffer) => new Uint8Array(buffer)));
  await writeFileAtomically(join(dir, MODEL_JSON_FILE), [Buffer.from(JSON.stringify(modelJson))]);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/** DIR/model.json for DIR, or the .json file given; throws a ModelFilesError when there is none. */
async function modelJsonPath(path: string): Promise<string> {
  const absolute = resolve(path);
  let isFile: boolean;
  try {
    isFile = (await stat(absolute)).isFile();
  } catch (cause) {
    throw new ModelFilesError(`model directory ${path} ${describeFsError(cause)}`, { cause, hint: EXPORT_HINT });
  }
  return isFile ? absolute : join(absolute, MODEL_JSON_FILE);
}

async function loadModelFiles(jsonPath: string): Promise<tf.io.ModelArtifacts> {
  const dir = dirname(jsonPath);
  const invalid = (what: string, cause?: unknown) =>
    new ModelFilesError(`${jsonPath} is not a TensorFlow.js layers model: ${what}`, { cause, hint: `${EXPORT_HINT} (again)` });
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ModelFilesError(missing ? `${dir} holds no ${basename(jsonPath)}` : `could not read ${jsonPath}: ${describeFsError(cause)}`, {
      cause, hint: missing ? `is it the directory \`hpctrain export --output\` wrote? ${EXPORT_HINT}` : `check that ${jsonPath} is readable`,
    });
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text) as tf.io.ModelJSON;
  } catch (cause) {
    throw invalid(`not JSON (${(cause as Error).message})`, cause);
  }
  if (typeof json !== 'object' || json === null || typeof json.modelTopology !== 'object' || json.modelTopology === null) throw invalid('it has no modelTopology');
  if (json.format !== 'layers-model') throw invalid(`its format is ${JSON.stringify(json.format)}, not "layers-model"`);
  if (!Array.isArray(json.weightsManifest)) throw invalid('it has no weightsManifest');
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => readWeights(dir, jsonPath, manifest));
}

async function readWeights(dir: string, jsonPath: string, manifest: tf.io.WeightsManifestConfig): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs = manifest.flatMap((group) => group.weights);
  const buffers: Buffer[] = [];
  for (const path of manifest.flatMap((group) => group.paths)) {
    const file = join(dir, path);
    try {
      buffers.push(await readFile(file));
    } catch (cause) {
      throw new ModelFilesError(`could not read ${file}, a weight file that ${jsonPath} names: ${describeFsError(cause)}`, {
        cause, hint: 'copy the whole model directory, weight files and all, or export it again',
      });
    }
  }
  const data = Buffer.concat(buffers);
  const expected = expectedWeightBytes(specs);
  if (expected !== undefined && data.length !== expected) {
    throw new ModelFilesError(`the weight files of ${jsonPath} hold ${data.length} bytes; its manifest describes ${expected}`, {
      hint: 'a copy or a write stopped early, or the files are of different exports: export the model again',
    });
  }
  return [specs, data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer];
}

const BYTES_PER_VALUE: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** The bytes the manifest's weights take, or undefined when some dtype has no fixed size (strings). */
function expectedWeightBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const bytes = BYTES_PER_VALUE[spec.quantization?.dtype ?? spec.dtype];
    if (bytes === undefined) return undefined;
    total += spec.shape.reduce((a, b) => a * b, 1) * bytes;
  }
  return total;
}

/** labels.txt: line i is the name of class i. */
export async function writeLabels(dir: string, labels: readonly string[]): Promise<void> {
  await makeDirectory(dir);
  await writeFileAtomically(join(dir, LABELS_FILE), [Buffer.from(labels.map((label) => `${label}\n`).join(''))]);
}

/** The class names of the model in `path` (a directory or its model.json), by index. */
export async function readLabels(path: string): Promise<string[]> {
  const file = join(dirname(await modelJsonPath(path)), LABELS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ModelFilesError(`could not read the class names, ${file}: ${describeFsError(cause)}`, {
      cause, hint: `hpctrain export writes ${LABELS_FILE} beside model.json: copy it along, or export the model again`,
    });
  }
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Writes `name` in dir as JSON, all at once. */
export async function writeJsonFile(dir: string, name: string, value: unknown): Promise<void> {
  await makeDirectory(dir);
  await writeFileAtomically(join(dir, name), [Buffer.from(JSON.stringify(value, null, 2) + '\n')]);
}

async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new ModelFilesError(`could not create the model directory ${dir}: ${describeFsError(cause)}`, {
      cause, hint: 'choose an --output directory that can be created and written to',
    });
  }
}

async function writeFileAtomically(path: string, pieces: readonly Uint8Array[]): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, pieces);
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    const bytes = pieces.reduce((sum, piece) => sum + piece.length, 0);
    throw new ModelFilesError(`could not write ${path}: ${describeFsError(cause)}`, {
      cause, hint: `check that ${dirname(path)} is writable and has ${(bytes / 1e6).toFixed(1)} MB free`,
    });
  }
}

/** "does not exist", or Node's own words for the rest ("EACCES: permission denied, open '...'"). */
function describeFsError(cause: unknown): string {
  if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return 'does not exist';
  return cause instanceof Error ? cause.message : String(cause);
}
