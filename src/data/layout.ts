// Which of the layouts users already have a data directory is in, for one split. Checked in this
// order, because a directory may hold both (TFRecords are usually made from the folders, and are
// then the faster to read):
//   1. TFRecord shards from TensorFlow's build_imagenet_data.py: DIR/<split>-00000-of-01024 ...
//      (or in DIR/<split>/); every shard of the set must be there.
//   2. ImageNet folders: DIR/train/<wnid>/*.JPEG; for validation, DIR/validation/ (or DIR/val/)
//      holding either <wnid>/*.JPEG folders or the images themselves plus a labels file.
// Only listings are read here; imagenet-dir.ts and tfrecord-shards.ts read the examples.

import { existsSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import type { Split } from './types.js';

export type Layout =
  | { format: 'tfrecord'; root: string; split: Split; shards: string[] }
  | {
      format: 'imagenet-dir';
      root: string;
      split: Split;
      splitDir: string;
      arrangement: 'per-class' | 'flat';
      /** The folder whose sub-folders name the classes: train/ when present. */
      classDir: string | undefined;
      /** For the flat arrangement. */
      labelsFile: string | undefined;
    };

/** Image files by extension; anything else in a class folder (.DS_Store, notes) is ignored. */
export const IMAGE_FILE = /\.(jpe?g|png)$/i;

/** Where a flat validation folder's labels are looked for, in order; see labels-file.ts. */
export function labelsFileCandidates(root: string, splitDir: string): string[] {
  return [
    join(splitDir, 'labels.txt'),
    join(root, 'validation_labels.txt'),
    join(root, 'imagenet_2012_validation_synset_labels.txt'),
    join(root, 'val.txt'),
  ];
}

export function detectLayout(root: string, split: Split, labelsFile?: string): Layout {
  const entries = listDir(root, `data directory ${root}`);
  const splitDir = findSplitDir(root, split);
  const shards = findShards(root, entries, split) ?? (splitDir ? findShards(splitDir, listDir(splitDir), split) : undefined);
  if (shards) return { format: 'tfrecord', root, split, shards };
  if (!splitDir) {
    throw new DataError(`no ${split} data in ${root}: ${expected(root, split)}; found ${summarize(entries)}`, { hint: HINT });
  }
  const inside = listDir(splitDir);
  const folders = subfolders(splitDir, inside);
  const images = imageFiles(splitDir, inside);
  const trainDir = join(root, 'train');
  const classDir = isDirectory(trainDir) && subfolders(trainDir).length > 0 ? trainDir : folders.length > 0 ? splitDir : undefined;
  if (folders.length > 0) {
    return { format: 'imagenet-dir', root, split, splitDir, arrangement: 'per-class', classDir, labelsFile: undefined };
  }
  if (images.length === 0) {
    throw new DataError(`${splitDir} holds no class folders and no images: ${expected(root, split)}; found ${summarize(inside)}`, { hint: HINT });
  }
  if (split === 'train') {
    throw new DataError(
      `${splitDir} holds ${images.length} images but no class folders: expected ${splitDir}/<wnid>/*.JPEG, one folder per class`,
      { hint: 'move each image into the folder of its class (ILSVRC2012_img_train.tar holds one tar per class)' },
    );
  }
  const candidates = labelsFile ? [labelsFile] : labelsFileCandidates(root, splitDir);
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new DataError(
      `${splitDir} holds ${images.length} images without class folders, and no labels file says their classes: looked for ${candidates.join(', ')}`,
      { hint: `give each image's class in one of those files (one wnid per line in sorted file-name order, or "<file> <wnid or 0-based index>" lines), or sort the images into ${splitDir}/<wnid>/ folders` },
    );
  }
  return { format: 'imagenet-dir', root, split, splitDir, arrangement: 'flat', classDir, labelsFile: found };
}

const HINT =
  'point --data at the folder that holds train/ and validation/ (ImageNet folders) or the train-*-of-* and validation-*-of-* shards (TFRecords), or use --data synthetic';

function expected(root: string, split: Split): string {
  const folders =
    split === 'train'
      ? `${root}/train/<wnid>/*.JPEG`
      : `${root}/validation/<wnid>/*.JPEG, or ${root}/validation/*.JPEG with a labels file`;
  return `expected ImageNet folders (${folders}) or TFRecord shards (${root}/${split}-00000-of-NNNNN, as build_imagenet_data.py writes)`;
}

function findSplitDir(root: string, split: Split): string | undefined {
  const names = split === 'train' ? ['train'] : ['validation', 'val'];
  return names.map((name) => join(root, name)).find((path) => isDirectory(path));
}

/** The split's shards in shard order, or undefined when there are none; an incomplete set throws. */
function findShards(dir: string, entries: Dirent[], split: Split): string[] | undefined {
  const pattern = new RegExp(`^${split}-(\\d+)-of-(\\d+)$`);
  const found = new Map<number, string>();
  const totals = new Set<number>();
  for (const entry of entries) {
    const match = pattern.exec(entry.name);
    if (!match || entry.isDirectory()) continue;
    found.set(Number(match[1]), join(dir, entry.name));
    totals.add(Number(match[2]));
  }
  if (found.size === 0) return undefined;
  if (totals.size > 1) {
    throw new DataError(`${dir} mixes ${split} shard sets of ${[...totals].sort((a, b) => a - b).join(' and ')} shards`, {
      hint: 'keep one set of shards per directory',
    });
  }
  const total = [...totals][0]!;
  const width = String(total).length > 5 ? String(total).length : 5;
  const missing: string[] = [];
  for (let i = 0; i < total; i++) {
    if (!found.has(i)) missing.push(`${split}-${String(i).padStart(width, '0')}-of-${String(total).padStart(width, '0')}`);
  }
  if (missing.length > 0 || found.size !== total) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
    throw new DataError(`${dir} holds ${found.size} of the ${total} ${split} TFRecord shards; missing ${shown || 'shards numbered beyond the total'}`, {
      hint: 'copy the missing shards, or re-create the set with build_imagenet_data.py',
    });
  }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, path]) => path);
}

function listDir(path: string, what = path): Dirent[] {
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    throw new DataError(`${what} does not exist or cannot be read (${(error as Error).message})`, { hint: HINT, cause: error });
  }
  if (!stats.isDirectory()) throw new DataError(`${what} is not a directory`, { hint: HINT });
  return readdirSync(path, { withFileTypes: true });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Sub-folder names in code-unit order (the same on every rank), symbolic links followed. */
export function subfolders(dir: string, entries = readdirSync(dir, { withFileTypes: true })): string[] {
  return entries
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && isDirectory(join(dir, e.name))))
    .map((e) => e.name)
    .sort();
}

/** Image file names in code-unit order; a symbolic link counts as the file it points to. */
export function imageFiles(dir: string, entries = readdirSync(dir, { withFileTypes: true })): string[] {
  return entries
    .filter((e) => IMAGE_FILE.test(e.name) && (e.isFile() || (e.isSymbolicLink() && !isDirectory(join(dir, e.name)))))
    .map((e) => e.name)
    .sort();
}

/** "nothing", or up to five names ("train/", "notes.txt", ...) and how many more. */
function summarize(entries: Dirent[]): string {
  if (entries.length === 0) return 'nothing';
  const names = entries.map((e) => (e.isDirectory() ? `${e.name}/` : e.name)).sort();
  return names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
}
