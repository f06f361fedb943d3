// One decode task, as a worker thread runs it: read the bytes (a file, or a TFRecord record whose
// CRC is checked and whose tf.train.Example is parsed), crop and resize, write floats into the
// batch's shared buffer. Every failure becomes a result naming the reason, never a throw, so that
// one bad image costs one image.

import { readFileSync } from 'node:fs';
import { parseImageExample } from './example-proto.js';
import { centralCrop, decodeImage, sampleTrainAugmentation, type Augmentation } from './preprocess.js';
import { createRandom } from './random.js';
import { readTfRecord } from './tfrecord.js';
import type { CropRequest, DecodeResult, DecodeTask } from './types.js';

export async function runDecodeTask(task: DecodeTask): Promise<DecodeResult> {
  try {
    const { location } = task;
    let encoded: Uint8Array;
    let label: number | undefined;
    if (location.kind === 'file') {
      encoded = readFileSync(location.path);
    } else {
      const example = parseImageExample(readTfRecord(location.path, location.offset, location.length));
      encoded = example.encoded;
      label = example.label;
    }
    const output = new Float32Array(task.output);
    await decodeImage(encoded, planFor(task.crop), task.imageSize, output, task.outputOffset);
    return { id: task.id, ok: true, label };
  } catch (error) {
    return { id: task.id, ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

function planFor(crop: CropRequest): (width: number, height: number) => Augmentation {
  if (crop.mode === 'eval') return (width, height) => ({ crop: centralCrop(width, height), flip: false });
  // Keyed by the example, not the thread: the same example gets the same crop in an epoch.
  return (width, height) => sampleTrainAugmentation(createRandom(crop.seed, crop.epoch, crop.index), width, height);
}
