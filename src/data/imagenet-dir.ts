// A split in ImageNet folders: train/<wnid>/*.JPEG, validation/<wnid>/*.JPEG or validation/*.JPEG
// with a labels file. The class index is the position of the wnid among train/'s sorted folder
// names (code-unit order, not the order readdir returns), so every rank, and the train and
// validation splits, agree on it. Images are listed in sorted order within each class.

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DataError } from '../errors.js';
import { parseLabelsFile } from './labels-file.js';
import { imageFiles, subfolders, type Layout } from './layout.js';
import type { Dataset, ExampleList, ExampleLocation } from './types.js';

type FolderLayout = Extract<Layout, { format: 'imagenet-dir' }>;

export function openImagenetDir(layout: FolderLayout): Dataset {
  const { root, split, splitDir } = layout;
  const classDirClasses = layout.classDir ? subfolders(layout.classDir) : undefined;
  const paths: string[] = [];
  let labels: Int32Array;
  let classes: readonly string[];

  if (layout.arrangement === 'per-class') {
    classes = classDirClasses!;
    const index = new Map(classes.map((name, i) => [name, i]));
    const labelList: number[] = [];
    for (const folder of subfolders(splitDir)) {
      const label = index.get(folder);
      if (label === undefined) {
        throw new DataError(`${join(splitDir, folder)} is not one of the ${classes.length} class folders of ${layout.classDir}`, {
          hint: `the ${split} classes must be the train/ classes; remove or rename the folder`,
        });
      }
      for (const name of imageFiles(join(splitDir, folder))) {
        paths.push(join(folder, name));
        labelList.push(label);
      }
    }
    labels = Int32Array.from(labelList);
  } else {
    const names = imageFiles(splitDir);
    const labelsFile = layout.labelsFile!;
    let text: string;
    try {
      text = readFileSync(labelsFile, 'utf8');
    } catch (error) {
      throw new DataError(`cannot read labels file ${labelsFile}: ${(error as Error).message}`, { cause: error });
    }
    const parsed = parseLabelsFile(text, labelsFile, names, classDirClasses);
    paths.push(...names);
    labels = parsed.labels;
    classes = parsed.classes;
  }

  if (paths.length === 0) {
    throw new DataError(`the class folders of ${splitDir} hold no images (*.JPEG, *.jpg, *.png): expected ${splitDir}/<wnid>/*.JPEG`, {
      hint: 'extract the images into their class folders',
    });
  }
  const arrangement = layout.arrangement === 'flat' ? `flat, labels from ${layout.labelsFile}` : 'class folders';
  return {
    format: 'imagenet-dir',
    split,
    root,
    numClasses: classes.length,
    classes,
    examples: new FolderExamples(splitDir, paths, labels),
    labelOffset: 0,
    description: `${split}: ImageNet folders ${relative(root, splitDir) || '.'}/ in ${root} (${arrangement}): ${paths.length} images, ${classes.length} classes`,
  };
}

/** Paths relative to the split folder and one label each: 1.28M short strings, not 1.28M objects. */
class FolderExamples implements ExampleList {
  constructor(
    private readonly dir: string,
    private readonly paths: readonly string[],
    private readonly labels: Int32Array,
  ) {}

  get count(): number {
    return this.paths.length;
  }

  location(index: number): ExampleLocation {
    return { kind: 'file', path: this.describe(index) };
  }

  label(index: number): number {
    return this.labels[index]!;
  }

  describe(index: number): string {
    return join(this.dir, this.paths[index]!);
  }
}
