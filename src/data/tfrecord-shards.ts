// A split as TFRecord shards (build_imagenet_data.py's train-00000-of-01024 ...): every rank
// walks the length headers of every shard once, at start, to number the records; after that a
// record is read by offset like a file. Examples are in shard order, then record order.
//
// Labels: build_imagenet_data.py writes image/class/label = 1..1000, the position of the synset
// in its sorted synset list plus one, keeping 0 for "background". hpctrain's class index is the
// label minus labelOffset (default 1), which is then the same index as the sorted train/<wnid>/
// folders give. A label outside 0..numClasses-1 after the offset makes that record a bad image.

import { basename, dirname } from 'node:path';
import { indexTfRecordFile } from './tfrecord.js';
import type { Layout } from './layout.js';
import type { Dataset, ExampleList, ExampleLocation } from './types.js';

type ShardLayout = Extract<Layout, { format: 'tfrecord' }>;

export interface TfRecordLabels {
  /** ILSVRC2012: 1000. */
  numClasses: number;
  /** build_imagenet_data.py: 1. */
  labelOffset: number;
}

export function openTfRecordShards(layout: ShardLayout, labels: TfRecordLabels): Dataset {
  const shardOf: number[] = [];
  const recordOf: number[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  layout.shards.forEach((path, shard) => {
    const index = indexTfRecordFile(path);
    index.offsets.forEach((offset, record) => {
      shardOf.push(shard);
      recordOf.push(record);
      offsets.push(offset);
      lengths.push(index.lengths[record]!);
    });
  });
  const examples = new RecordExamples(layout.shards, Uint32Array.from(shardOf), Uint32Array.from(recordOf), Float64Array.from(offsets), Float64Array.from(lengths));
  const first = basename(layout.shards[0]!);
  return {
    format: 'tfrecord',
    split: layout.split,
    root: layout.root,
    numClasses: labels.numClasses,
    classes: undefined,
    examples,
    labelOffset: labels.labelOffset,
    description: `${layout.split}: TFRecord shards ${first}... in ${dirname(layout.shards[0]!)} (${layout.shards.length} shards): ${examples.count} records, labels minus ${labels.labelOffset} as ${labels.numClasses} classes`,
  };
}

class RecordExamples implements ExampleList {
  constructor(
    private readonly shards: readonly string[],
    private readonly shardOf: Uint32Array,
    private readonly recordOf: Uint32Array,
    private readonly offsets: Float64Array,
    private readonly lengths: Float64Array,
  ) {}

  get count(): number {
    return this.shardOf.length;
  }

  location(index: number): ExampleLocation {
    return { kind: 'tfrecord', path: this.shards[this.shardOf[index]!]!, offset: this.offsets[index]!, length: this.lengths[index]! };
  }

  label(): undefined {
    return undefined;
  }

  describe(index: number): string {
    return `${this.shards[this.shardOf[index]!]!} record ${this.recordOf[index]!} (byte ${this.offsets[index]!})`;
  }
}
