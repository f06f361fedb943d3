import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { openImagenetDir } from '../../src/data/imagenet-dir.js';
import { parseLabelsFile } from '../../src/data/labels-file.js';
import { detectLayout, imageFiles, subfolders, type Layout } from '../../src/data/layout.js';
import { openTfRecordShards } from '../../src/data/tfrecord-shards.js';
import { DataError } from '../../src/errors.js';
import { imagenetExample, makeTempDir, removeDir, writeImagenetTrain, writeTfRecordFile } from './helpers.js';

/** The DataError thrown, checked to hold every fragment. */
function dataError(run: () => unknown, ...fragments: (string | RegExp)[]): DataError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DataError, `expected a DataError, got ${String(caught)}`);
  assert.equal(caught.phase, 'data');
  for (const f of fragments) assert.ok(typeof f === 'string' ? caught.message.includes(f) : f.test(caught.message), `"${caught.message}" lacks ${f}`);
  return caught;
}

const touch = (path: string, text = 'x') => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
};

describe('data/layout', () => {
  let root: string;
  beforeEach(() => (root = makeTempDir()));
  afterEach(() => removeDir(root));

  it('reads train/<wnid>/ folders with class indices from the sorted folder names', async () => {
    const fixture = await writeImagenetTrain(root, 3, 2);
    touch(join(root, 'train', fixture.classes[1]!, 'notes.txt')); // not an image: ignored
    const layout = detectLayout(root, 'train');
    assert.equal(layout.format, 'imagenet-dir');
    const dataset = openImagenetDir(layout as Extract<Layout, { format: 'imagenet-dir' }>);
    assert.deepEqual(dataset.classes, [...fixture.classes].sort());
    assert.equal(dataset.examples.count, 6);
    for (let i = 0; i < 6; i++) {
      const path = dataset.examples.describe(i);
      assert.ok(path.includes(`/${dataset.classes![dataset.examples.label(i)!]}/`), `${path} has label ${dataset.examples.label(i)}`);
    }
    assert.match(dataset.description, /6 images, 3 classes/);
  });

  it('reads validation/ as class folders or flat with each kind of labels file', async () => {
    const fixture = await writeImagenetTrain(root, 3, 1);
    const [a, b, c] = [...fixture.classes].sort();
    // Per-class, under the name val/.
    touch(join(root, 'val', c!, 'x.JPEG'));
    touch(join(root, 'val', a!, 'y.JPEG'));
    let dataset = openImagenetDir(detectLayout(root, 'validation') as Extract<Layout, { format: 'imagenet-dir' }>);
    assert.deepEqual([0, 1].map((i) => dataset.examples.label(i)), [0, 2]);
    removeDir(join(root, 'val'));

    // Flat, TensorFlow's one wnid per line in sorted file order.
    for (const name of ['ILSVRC2012_val_00000002.JPEG', 'ILSVRC2012_val_00000001.JPEG', 'ILSVRC2012_val_00000003.JPEG']) touch(join(root, 'validation', name));
    touch(join(root, 'imagenet_2012_validation_synset_labels.txt'), `${b}\n${c}\n${a}\n`);
    let layout = detectLayout(root, 'validation');
    assert.ok(layout.format === 'imagenet-dir' && layout.arrangement === 'flat');
    dataset = openImagenetDir(layout);
    assert.deepEqual([0, 1, 2].map((i) => dataset.examples.label(i)), [1, 2, 0]);
    assert.match(dataset.examples.describe(0), /ILSVRC2012_val_00000001.JPEG$/);

    // Caffe's val.txt: "<file> <0-based index>", in any order; a labels.txt in validation/ wins.
    touch(join(root, 'validation', 'labels.txt'), `ILSVRC2012_val_00000003.JPEG 1\nILSVRC2012_val_00000001.JPEG 2\nILSVRC2012_val_00000002 ${a}\n`);
    dataset = openImagenetDir(detectLayout(root, 'validation') as Extract<Layout, { format: 'imagenet-dir' }>);
    assert.deepEqual([0, 1, 2].map((i) => dataset.examples.label(i)), [2, 0, 1]);
  });

  it('finds TFRecord shards in the directory or in its split folder and numbers their records', () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
    for (const [i, count] of [[1, 2], [0, 3]] as const) {
      writeTfRecordFile(join(root, `train-0000${i}-of-00002`), Array.from({ length: count }, () => imagenetExample(jpeg, 1)));
    }
    touch(join(root, 'train', 'n01', 'a.JPEG')); // folders too: the shards are preferred
    const layout = detectLayout(root, 'train');
    assert.equal(layout.format, 'tfrecord');
    const dataset = openTfRecordShards(layout as Extract<Layout, { format: 'tfrecord' }>, { numClasses: 1000, labelOffset: 1 });
    assert.equal(dataset.examples.count, 5);
    assert.match(dataset.examples.describe(3), /train-00001-of-00002 record 0 \(byte 0\)$/);
    assert.equal(dataset.examples.location(4).kind, 'tfrecord');

    const nested = makeTempDir();
    try {
      mkdirSync(join(nested, 'validation'));
      writeTfRecordFile(join(nested, 'validation', 'validation-00000-of-00001'), [imagenetExample(jpeg, 3)]);
      const found = detectLayout(nested, 'validation');
      assert.ok(found.format === 'tfrecord' && found.shards.length === 1);
    } finally {
      removeDir(nested);
    }
  });

  it('says which layout it expected for a missing, empty or mis-laid directory', async () => {
    dataError(() => detectLayout(join(root, 'nope'), 'train'), 'does not exist');
    touch(join(root, 'file'));
    dataError(() => detectLayout(join(root, 'file'), 'train'), 'is not a directory');
    removeDir(join(root, 'file'));
    const empty = dataError(() => detectLayout(root, 'train'), `no train data in ${root}`, `${root}/train/<wnid>/*.JPEG`, 'train-00000-of-NNNNN', 'found nothing');
    assert.match(empty.hint ?? '', /--data synthetic/);
    mkdirSync(join(root, 'train'));
    dataError(() => detectLayout(root, 'train'), 'holds no class folders and no images', `${root}/train/<wnid>/*.JPEG`);
    touch(join(root, 'train', 'a.JPEG'));
    dataError(() => detectLayout(root, 'train'), 'holds 1 images but no class folders', 'train/<wnid>/*.JPEG');
    dataError(() => detectLayout(root, 'validation'), 'no validation data', `${root}/validation/<wnid>/*.JPEG`, 'found train/');
    touch(join(root, 'validation', 'v.JPEG'));
    dataError(() => detectLayout(root, 'validation'), 'no labels file', 'validation_labels.txt', 'val.txt');
    mkdirSync(join(root, 'other', 'train', 'n01'), { recursive: true });
    dataError(() => openImagenetDir(detectLayout(join(root, 'other'), 'train') as Extract<Layout, { format: 'imagenet-dir' }>), 'hold no images', 'train/<wnid>/*.JPEG');
  });

  it('refuses an incomplete set of shards, naming the missing ones', () => {
    writeTfRecordFile(join(root, 'train-00000-of-00004'), []);
    writeTfRecordFile(join(root, 'train-00002-of-00004'), []);
    dataError(() => detectLayout(root, 'train'), 'holds 2 of the 4 train TFRecord shards', 'train-00001-of-00004, train-00003-of-00004');
  });

  it('refuses validation folders that are not train classes', async () => {
    await writeImagenetTrain(root, 2, 1);
    touch(join(root, 'validation', 'n99999999', 'a.JPEG'));
    dataError(() => openImagenetDir(detectLayout(root, 'validation') as Extract<Layout, { format: 'imagenet-dir' }>), 'n99999999 is not one of the 2 class folders');
  });

  it('parses labels files strictly, refusing the devkit ground truth numbering', () => {
    const files = ['a.JPEG', 'b.JPEG'];
    assert.deepEqual([...parseLabelsFile('n2\nn1\n', 'f', files, undefined).labels], [1, 0]);
    assert.deepEqual(parseLabelsFile('n2\nn1\n', 'f', files, undefined).classes, ['n1', 'n2']);
    assert.deepEqual([...parseLabelsFile('ImageId,PredictionString\nb,n1 1 2 3 4\na,n2 5 6 7 8\n', 'f', files, ['n1', 'n2']).labels], [1, 0]);
    dataError(() => parseLabelsFile('490\n361\n', 'gt.txt', files, ['n1', 'n2']), 'line 1 of gt.txt', 'bare number', 'meta.mat');
    dataError(() => parseLabelsFile('n1\n', 'f', files, ['n1']), 'has 1 lines for 2 images');
    dataError(() => parseLabelsFile('a.JPEG 0\n', 'f', files, ['n1']), 'gives no class for b.JPEG');
    dataError(() => parseLabelsFile('a 0\nb 2\n', 'f', files, ['n1', 'n2']), 'line 2 of f: class index 2 is not below the 2 classes');
    dataError(() => parseLabelsFile('a n1\nb n3\n', 'f', files, ['n1', 'n2']), '"n3" is not a class folder');
    dataError(() => parseLabelsFile('\n\n', 'f', files, ['n1']), 'is empty');
  });

  it('sorts listings by name whatever order the file system returns them in', () => {
    const entry = (name: string, directory: boolean) => ({ name, isDirectory: () => directory, isFile: () => !directory, isSymbolicLink: () => false }) as Dirent;
    const listed = [entry('n02', true), entry('b.JPEG', false), entry('n10', true), entry('a.jpg', false), entry('n01', true), entry('c.txt', false), entry('B.png', false)];
    assert.deepEqual(subfolders(root, listed), ['n01', 'n02', 'n10']);
    assert.deepEqual(imageFiles(root, listed), ['B.png', 'a.jpg', 'b.JPEG']);
    assert.deepEqual(subfolders(root, [...listed].reverse()), ['n01', 'n02', 'n10']);
  });
});
