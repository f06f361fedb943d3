// Just enough protobuf to read an image out of a tf.train.Example
// (tensorflow/core/example/example.proto, feature.proto):
//   Example  { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }      map entry: { string key = 1; Feature value = 2; }
//   Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }   Int64List { repeated int64 value = 1 [packed]; }
// Unknown fields are skipped, so records with more features (bounding boxes, synsets) read fine.

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
const UTF8 = new TextDecoder();

/** The image and label of one record written by build_imagenet_data.py (or anything alike). */
export interface ImageExample {
  encoded: Uint8Array;
  /** image/class/label as stored: 1..1000 for build_imagenet_data.py, 0 being "background". */
  label: number;
}

export function parseImageExample(bytes: Uint8Array): ImageExample {
  let encoded: Uint8Array | undefined;
  let label: number | undefined;
  for (const [field, , features] of fields(bytes)) {
    if (field !== 1 || !(features instanceof Uint8Array)) continue;
    for (const [entryField, , entry] of fields(features)) {
      if (entryField !== 1 || !(entry instanceof Uint8Array)) continue;
      let key: string | undefined;
      let feature: Uint8Array | undefined;
      for (const [f, , value] of fields(entry)) {
        if (f === 1 && value instanceof Uint8Array) key = UTF8.decode(value);
        if (f === 2 && value instanceof Uint8Array) feature = value;
      }
      if (feature === undefined) continue;
      if (key === 'image/encoded') encoded = firstBytes(feature);
      if (key === 'image/class/label') label = firstInt64(feature);
    }
  }
  if (encoded === undefined) throw new Error("the record has no 'image/encoded' bytes feature");
  if (label === undefined) throw new Error("the record has no 'image/class/label' int64 feature");
  return { encoded, label };
}

function firstBytes(feature: Uint8Array): Uint8Array | undefined {
  for (const [f, , list] of fields(feature)) {
    if (f !== 1 || !(list instanceof Uint8Array)) continue;
    for (const [g, , value] of fields(list)) if (g === 1 && value instanceof Uint8Array) return value;
  }
  return undefined;
}

function firstInt64(feature: Uint8Array): number | undefined {
  for (const [f, , list] of fields(feature)) {
    if (f !== 3 || !(list instanceof Uint8Array)) continue;
    for (const [g, wireType, value] of fields(list)) {
      if (g !== 1) continue;
      if (wireType === VARINT) return value as number;
      // Packed: a run of varints.
      if (value instanceof Uint8Array && value.length > 0) return readVarint(value, 0)[0];
    }
  }
  return undefined;
}

/** [field number, wire type, value]: a number for varints, the bytes for length-delimited fields. */
type Field = [number, number, number | Uint8Array | undefined];

function* fields(bytes: Uint8Array): Generator<Field> {
  let position = 0;
  while (position < bytes.length) {
    const [tag, afterTag] = readVarint(bytes, position);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    position = afterTag;
    if (wireType === VARINT) {
      const [value, next] = readVarint(bytes, position);
      position = next;
      yield [field, wireType, value];
    } else if (wireType === LENGTH_DELIMITED) {
      const [length, start] = readVarint(bytes, position);
      position = start + length;
      if (position > bytes.length) throw new Error('the record is not a valid tf.train.Example (a field runs past its end)');
      yield [field, wireType, bytes.subarray(start, position)];
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      position += wireType === FIXED64 ? 8 : 4;
      yield [field, wireType, undefined];
    } else {
      throw new Error(`the record is not a valid tf.train.Example (wire type ${wireType})`);
    }
  }
  if (position > bytes.length) throw new Error('the record is not a valid tf.train.Example (cut short)');
}

/** An unsigned varint as a number (exact below 2^53, which covers every label and length). */
function readVarint(bytes: Uint8Array, start: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let position = start; position < bytes.length && position < start + 10; position++) {
    const byte = bytes[position]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, position + 1];
  }
  throw new Error('the record is not a valid tf.train.Example (bad varint)');
}
