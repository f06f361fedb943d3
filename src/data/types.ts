// The plain values the input pipeline hands out and passes between its threads.

export type Split = 'train' | 'validation';

/** One step's input: plain arrays, so that any tfjs backend (or none) can take them. */
export interface Batch {
  /** NHWC: batchSize x imageSize x imageSize x 3, RGB scaled to [-1, 1]. */
  readonly images: Float32Array;
  /** Class indices 0..numClasses-1, one per image. */
  readonly labels: Int32Array;
  readonly batchSize: number;
  readonly imageSize: number;
}

/** An image the pipeline skipped: where it is and why it could not be used. */
export interface BadImage {
  path: string;
  reason: string;
  epoch: number;
}

/** Batches for one split on one rank, epoch after epoch. */
export interface InputPipeline {
  /** One line for logs: what was found and how it is read. */
  readonly description: string;
  readonly numClasses: number;
  /** Class names (wnids) by index, when the layout names them (ImageNet folders). */
  readonly classes: readonly string[] | undefined;
  /** Batches each epoch(): the same on every rank in training. */
  readonly stepsPerEpoch: number;
  /** Distinct bad images met so far, in the order they were met. */
  readonly badImages: readonly BadImage[];
  /** The batches of `epoch` from its `fromStep`-th on (a resumed run skips what it did, without decoding it). */
  epoch(epoch: number, fromStep?: number): AsyncGenerator<Batch, void, undefined>;
  close(): Promise<void>;
}

/** Where a decode worker finds one example's encoded image. */
export type ExampleLocation =
  | { kind: 'file'; path: string }
  | { kind: 'tfrecord'; path: string; offset: number; length: number };

/** A split's examples in one fixed order, the same on every rank. */
export interface ExampleList {
  readonly count: number;
  location(index: number): ExampleLocation;
  /** The class index, or undefined when only the record knows it (TFRecord). */
  label(index: number): number | undefined;
  /** The file (and record) to name in reports. */
  describe(index: number): string;
}

/** A split found on disk. */
export interface Dataset {
  readonly format: 'imagenet-dir' | 'tfrecord';
  readonly split: Split;
  readonly root: string;
  readonly numClasses: number;
  /** Class names (wnids) by index, when the layout names them. */
  readonly classes: readonly string[] | undefined;
  readonly examples: ExampleList;
  /** Subtracted from a TFRecord's image/class/label to give the class index. */
  readonly labelOffset: number;
  readonly description: string;
}

/** How a worker crops one image: Inception's random crop and flip, or the central crop. */
export type CropRequest = { mode: 'train'; seed: number; epoch: number; index: number } | { mode: 'eval' };

/** Main thread -> decode worker: decode one example into `output` at `outputOffset` (floats). */
export interface DecodeTask {
  id: number;
  location: ExampleLocation;
  crop: CropRequest;
  imageSize: number;
  output: SharedArrayBuffer;
  outputOffset: number;
}

/** Decode worker -> main thread. `label` is the record's raw label (TFRecord only). */
export type DecodeResult =
  | { id: number; ok: true; label: number | undefined }
  | { id: number; ok: false; reason: string };
