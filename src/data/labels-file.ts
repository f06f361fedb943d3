// The classes of a flat validation folder (validation/*.JPEG), from a labels file. Two forms:
//   - one class per line, line i for the i-th image in sorted file-name order, as TensorFlow's
//     imagenet_2012_validation_synset_labels.txt ("n01751748");
//   - "<file> <class>" per line, separated by spaces, a tab or a comma, further fields ignored, as
//     Caffe's val.txt ("ILSVRC2012_val_00000001.JPEG 65") or Kaggle's LOC_val_solution.csv; the
//     file name may lack its extension, and lines naming no image here (a header) are ignored.
// A class is a class folder name (wnid) or, in the second form, a 0-based index into the sorted
// class folders. Bare numbers one per line are refused: that is ILSVRC2012_validation_ground_truth.txt,
// whose 1-based ids follow the devkit's meta.mat order, not the sorted wnids.

import { DataError } from '../errors.js';

export interface ParsedLabels {
  /** The class index of each image, in the order of the file names given. */
  labels: Int32Array;
  classes: readonly string[];
}

/**
 * `fileNames` are the images in sorted order; `classes` the sorted class folders of train/, or
 * undefined when there are none (then the classes are the sorted distinct names in the file).
 */
export function parseLabelsFile(
  text: string,
  source: string,
  fileNames: readonly string[],
  classes: readonly string[] | undefined,
): ParsedLabels {
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ number: i + 1, fields: line.trim().split(/[\s,]+/).filter(Boolean) }))
    .filter((line) => line.fields.length > 0 && !line.fields[0]!.startsWith('#'));
  if (lines.length === 0) throw new DataError(`labels file ${source} is empty`);
  const paired = lines[0]!.fields.length >= 2;
  // The i-th image's class token, and the line it came from.
  const tokens: { token: string; number: number }[] = [];
  if (paired) {
    const byName = new Map<string, { token: string; number: number }>();
    for (const line of lines) {
      const entry = { token: line.fields[1] ?? '', number: line.number };
      byName.set(line.fields[0]!, entry);
      byName.set(stripExtension(line.fields[0]!), entry);
    }
    for (const name of fileNames) {
      const entry = byName.get(name) ?? byName.get(stripExtension(name));
      if (!entry) throw new DataError(`labels file ${source} gives no class for ${name}`, { hint: FORMS });
      tokens.push(entry);
    }
  } else {
    if (lines.length !== fileNames.length) {
      throw new DataError(`labels file ${source} has ${lines.length} lines for ${fileNames.length} images; one class per line needs one line per image, in sorted file-name order`, { hint: FORMS });
    }
    for (const line of lines) tokens.push({ token: line.fields[0]!, number: line.number });
  }

  const names = classes ?? [...new Set(tokens.map((t) => t.token))].sort();
  const index = new Map(names.map((name, i) => [name, i]));
  const labels = new Int32Array(tokens.length);
  tokens.forEach(({ token, number }, i) => {
    const byName = index.get(token);
    if (byName !== undefined) {
      labels[i] = byName;
    } else if (/^\d+$/.test(token) && paired && classes) {
      if (Number(token) >= names.length) {
        throw new DataError(`line ${number} of ${source}: class index ${token} is not below the ${names.length} classes of train/`, { hint: FORMS });
      }
      labels[i] = Number(token);
    } else if (/^\d+$/.test(token)) {
      throw new DataError(
        paired
          ? `line ${number} of ${source}: class "${token}" is a number, which needs train/<wnid>/ folders to say which class it is`
          : `line ${number} of ${source}: "${token}" is a bare number; a one-per-line labels file must name classes (wnids). ILSVRC2012_validation_ground_truth.txt numbers classes in the devkit's meta.mat order, which hpctrain does not read`,
        { hint: FORMS },
      );
    } else {
      throw new DataError(`line ${number} of ${source}: "${token}" is not a class folder of train/`, { hint: FORMS });
    }
  });
  return { labels, classes: names };
}

const FORMS =
  'use one wnid per line in sorted file-name order (TensorFlow\'s imagenet_2012_validation_synset_labels.txt), or "<file> <wnid or 0-based index>" lines (Caffe\'s val.txt)';

function stripExtension(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}
