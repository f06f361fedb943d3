import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../src/backend/tf.js';
import { ModelFilesError } from '../../src/errors.js';
import { modelFiles, readLabels, writeLabels } from '../../src/model/model-files.js';
import { makeTempDir, removeDir } from '../data/helpers.js';
import { useCpuBackend } from './cpu-backend.js';

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ name: 'in', shape: [3] });
  const hidden = tfl.layers.dense({ name: 'hidden', units: 4, activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ name: 'out', units: 2, activation: 'softmax' }).apply(hidden) as tfl.SymbolicTensor;
  return tfl.model({ name: 'small', inputs: input, outputs: output });
}

describe('model/model-files', () => {
  useCpuBackend();
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpctrain-model-files-');
  });
  afterEach(() => removeDir(dir));

  it("saves model.json and weights.bin as tfjs-node's file:// handler lays them out, and loads them back", async () => {
    const model = smallModel();
    model.setUserDefinedMetadata({ note: { kept: true } });
    const saved = await model.save(modelFiles(join(dir, 'out')));
    assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['model.json', 'weights.bin'], 'no temporary file left');
    const json = JSON.parse(readFileSync(join(dir, 'out', 'model.json'), 'utf8'));
    assert.deepEqual(Object.keys(json), ['modelTopology', 'weightsManifest', 'format', 'generatedBy', 'convertedBy', 'userDefinedMetadata']);
    assert.deepEqual(json.weightsManifest, [{ paths: ['weights.bin'], weights: model.weights.map((w) => ({ name: w.originalName, shape: w.shape, dtype: 'float32' })) }]);
    assert.equal(readFileSync(join(dir, 'out', 'weights.bin')).length, saved.modelArtifactsInfo.weightDataBytes);
    assert.equal(saved.modelArtifactsInfo.weightDataBytes, 4 * (3 * 4 + 4 + 4 * 2 + 2));

    for (const path of [join(dir, 'out'), join(dir, 'out', 'model.json')]) {
      const loaded = await tfl.loadLayersModel(modelFiles(path));
      const x = tf.tensor2d([[1, -2, 3], [0.5, 0.5, -1]]);
      assert.deepEqual(await (loaded.predict(x) as tf.Tensor).data(), await (model.predict(x) as tf.Tensor).data());
      assert.deepEqual(loaded.getUserDefinedMetadata(), { note: { kept: true } });
      loaded.dispose();
    }
    model.dispose();
  });

  it('names what is wrong with a directory that holds no model, another kind of model, or a short weight file', async () => {
    const model = smallModel();
    await model.save(modelFiles(dir));
    model.dispose();
    const load = (path: string) => tfl.loadLayersModel(modelFiles(path));
    await assert.rejects(load(join(dir, 'nowhere')), (e: ModelFilesError) => e instanceof ModelFilesError && /model directory .*nowhere does not exist/.test(e.message) && /hpctrain export/.test(e.hint!));
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...json, format: 'graph-model' }));
    await assert.rejects(load(dir), /model\.json is not a TensorFlow\.js layers model: its format is "graph-model", not "layers-model"/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: ['weights.bin', 'group1-shard2of2.bin'] }] }));
    await assert.rejects(load(dir), /could not read .*group1-shard2of2\.bin, a weight file that .*model\.json names: does not exist/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'weights.bin'), readFileSync(join(dir, 'weights.bin')).subarray(0, 20));
    await assert.rejects(load(dir), /the weight files of .*model\.json hold 20 bytes; its manifest describes 104/);
  });

  it('writes and reads labels.txt, one class name a line', async () => {
    await writeLabels(dir, ['n01440764', 'n01443537', 'cat dog']);
    assert.equal(readFileSync(join(dir, 'labels.txt'), 'utf8'), 'n01440764\nn01443537\ncat dog\n');
    assert.deepEqual(await readLabels(dir), ['n01440764', 'n01443537', 'cat dog']);
    writeFileSync(join(dir, 'labels.txt'), 'a\r\nb\r\n');
    writeFileSync(join(dir, 'model.json'), '{}');
    assert.deepEqual(await readLabels(join(dir, 'model.json')), ['a', 'b'], 'CRLF, and the model.json path');
  });
});
