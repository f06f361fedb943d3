// `hpctrain dataset shapes DIR`: write a small dataset that a model must learn (shapes and
// textures, colour carrying no class), so that a cluster without internet, or without ImageNet,
// can check that its set-up learns before it spends a week on the real thing.
import { resolve } from 'node:path';
import { OptionsError } from '../errors.js';
import type { ShapeClass } from '../data/shapes-svg.js';
import type { OptionValues } from '../options.js';
import type { Command, CommandContext } from './types.js';

const SUBCOMMANDS = ['shapes'];
const USAGE = 'hpctrain dataset shapes DIR [--classes C|NAMES] [--train-per-class N] [--validation-per-class N] [--image-size S] [--seed SEED]';

export const datasetCommand: Command = {
  spec: {
    name: 'dataset',
    usage: USAGE,
    summary:
      'Write a generated dataset in the ILSVRC2012 layout that `hpctrain train --data DIR` reads:\n' +
      'DIR/train/<class>/<class>_<n>.JPEG and DIR/validation/<class>/<class>_<n>.JPEG. Its classes are\n' +
      'shapes and textures (circle, square, triangle, cross, ring, star, horizontal-stripes,\n' +
      'vertical-stripes, checkerboard, dots; the first C, or those named), each image with random colours, size,\n' +
      'position, line widths, a background gradient and noise, so that only the shape tells the class.\n' +
      'The same options give the same bytes. Use it to check that training learns on your cluster:\n' +
      '  hpctrain dataset shapes /scratch/shapes && sbatch --export=ALL,HPCTRAIN_DATA=/scratch/shapes slurm/train.slurm',
    options: [
      { name: 'classes', type: 'string', default: '10', valueName: 'C|NAMES',
        describe: 'number of classes, the first C of the list above (2-10), or the classes by name, comma-separated (e.g. horizontal-stripes,vertical-stripes,checkerboard,dots)' },
      { name: 'train-per-class', type: 'integer', default: 150, min: 1, max: 1_000_000, valueName: 'N', describe: 'training images per class' },
      { name: 'validation-per-class', type: 'integer', default: 30, min: 1, max: 1_000_000, valueName: 'N', describe: 'validation images per class' },
      { name: 'image-size', type: 'integer', default: 128, min: 16, max: 4096, valueName: 'PIXELS', describe: 'height and width of the square images (training resizes its crops to its own --image-size)' },
      { name: 'seed', type: 'integer', default: 1, min: 0, max: 2 ** 32 - 1, valueName: 'SEED', describe: 'seeds every image; another seed gives other images of the same classes' },
    ],
    details: 'DIR is created if missing; a DIR that already holds train/, validation/, val/ or TFRecord shards\nis refused, so nothing is written over data.',
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    const [subcommand, dir, ...extra] = positionals;
    if (subcommand === undefined) throw new OptionsError('dataset needs a subcommand', USAGE);
    if (!SUBCOMMANDS.includes(subcommand)) throw new OptionsError(`unknown dataset subcommand "${subcommand}"`, `subcommands: ${SUBCOMMANDS.join(', ')}`);
    if (dir === undefined) throw new OptionsError('dataset shapes needs the directory to write to', USAGE);
    if (extra.length > 0) throw new OptionsError(`unexpected argument "${extra[0]}" after dataset shapes ${dir}`, 'give one directory');

    const { writeShapesDataset } = await import('../data/shapes.js');
    const root = resolve(dir);
    const imageSize = values['image-size'] as number;
    const started = performance.now();
    const written = await writeShapesDataset({
      root,
      classes: parseClasses(values.classes as string),
      trainPerClass: values['train-per-class'] as number,
      validationPerClass: values['validation-per-class'] as number,
      imageSize,
      seed: values.seed as number,
    });
    const seconds = (performance.now() - started) / 1000;
    context.stdout(
      `wrote ${written.train} training images to ${root}/train and ${written.validation} validation images to ${root}/validation ` +
        `(${imageSize}x${imageSize} JPEG, seed ${values.seed}) in ${seconds.toFixed(1)} s\n` +
        `classes (${written.classes.length}): ${written.classes.join(', ')}\n` +
        `next, on this machine: hpctrain launch -n 2 -- train --data ${root}\n` +
        `or on a Slurm cluster: sbatch --export=ALL,HPCTRAIN_DATA=${root} slurm/train.slurm\n`,
    );
    return 0;
  },
};

/** "4" -> 4 (the first four); "dots,checkerboard" -> those classes, checked by writeShapesDataset. */
function parseClasses(text: string): number | ShapeClass[] {
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count < 2 || count > 10) throw new OptionsError(`--classes ${text} is not in 2..10`, 'give 2 to 10 classes, or their names');
    return count;
  }
  const names = text.split(',').map((name) => name.trim()) as ShapeClass[];
  if (names.length < 2) throw new OptionsError(`--classes ${text} names fewer than 2 classes`, 'a classifier needs 2 classes or more');
  return names;
}
