// A user of plain TensorFlow.js, elsewhere: loads an exported model with tfjs-core, -layers and
// -backend-cpu alone, through a handler of its own that reads the files model.json names, and
// prints the model's outputs for a batch of preprocessed images as JSON. It imports nothing of
// hpctrain, so hpctrain's layer classes are not registered: a model that needed them fails here.
//
//   node plain-tfjs-predict.js MODEL_DIR IMAGES_FILE COUNT OUTPUT_FILE
//
// IMAGES_FILE holds COUNT images as float32 NHWC; OUTPUT_FILE gets
// {probabilities, layerClasses, inputShape, registered} (tfjs's console banner goes to stdout).
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

const [modelDir, imagesFile, countText, outputFile] = process.argv.slice(2);
if (!modelDir || !imagesFile || !countText || !outputFile) throw new Error('usage: plain-tfjs-predict.js MODEL_DIR IMAGES_FILE COUNT OUTPUT_FILE');

/** What tfjs-node's file:// handler does on load, with tfjs-core's own parsing of model.json. */
function readModelFiles(jsonPath: string): tf.io.IOHandler {
  return {
    load: async () => {
      const modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const buffers: Buffer[] = [];
        for (const group of manifest) for (const path of group.paths) buffers.push(await readFile(join(dirname(jsonPath), path)));
        const data = Buffer.concat(buffers);
        return [manifest.flatMap((group) => group.weights), data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer];
      });
    },
  };
}

await tf.setBackend('cpu');
const model = await tfl.loadLayersModel(readModelFiles(join(modelDir, 'model.json')));
const inputShape = model.inputs[0]!.shape;
const size = inputShape[1]!;
const count = Number(countText);
const bytes = await readFile(imagesFile);
const images = tf.tensor4d(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), [count, size, size, 3]);
const probabilities = (model.predict(images) as tf.Tensor).arraySync() as number[][];
const registered = Object.keys((tf.serialization.SerializationMap.getMap() as unknown as { classNameMap: Record<string, unknown> }).classNameMap);
await writeFile(outputFile, JSON.stringify({ probabilities, layerClasses: [...new Set(model.layers.map((layer) => layer.getClassName()))], inputShape, registered }));
