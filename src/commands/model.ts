// `hpctrain model summary`: build Inception-V3 as configured and print its layers and parameter
// counts, as Keras's model.summary() does. tfjs is loaded only when the command runs, so
// `--help` stays instant; the pure-JS cpu backend builds the model in well under a second and
// needs neither tfjs-node nor a GPU.
import { OptionsError } from '../errors.js';
import type { InceptionV3Args } from '../model/inception-v3.js';
import type { OptionSpec, OptionValues } from '../options.js';
import type { Command, CommandContext } from './types.js';

/** The model's shape options; `train` takes the same ones. */
export const MODEL_OPTIONS: readonly OptionSpec[] = [
  { name: 'image-size', type: 'integer', env: 'HPCTRAIN_IMAGE_SIZE', default: 299, min: 75, valueName: 'PIXELS',
    describe: 'height and width of the square input images; 299 in the paper, at least 75' },
  { name: 'num-classes', type: 'integer', env: 'HPCTRAIN_NUM_CLASSES', default: 1000, min: 1, valueName: 'N',
    describe: 'number of classes the model predicts (1000 for ImageNet)' },
  { name: 'aux-logits', type: 'boolean', env: 'HPCTRAIN_AUX_LOGITS', default: false,
    describe: "add the paper's auxiliary classifier on mixed7 as a second output, aux_logits" },
];

export function readModelArgs(values: OptionValues, seed: number): InceptionV3Args {
  return {
    imageSize: values['image-size'] as number,
    numClasses: values['num-classes'] as number,
    auxLogits: values['aux-logits'] === true,
    seed,
  };
}

const SUBCOMMANDS = ['summary'];

export const modelCommand: Command = {
  spec: {
    name: 'model',
    usage: 'hpctrain model summary [--image-size S] [--num-classes C] [--aux-logits] [--json]',
    summary:
      'Build Inception-V3 (Keras\'s layer for layer, optionally with the auxiliary classifier) and print\n' +
      'every layer with its type, output shape and parameter count, then the total, trainable and\n' +
      'non-trainable parameter counts, as Keras\'s model.summary() does.',
    options: [
      ...MODEL_OPTIONS,
      { name: 'json', type: 'boolean', default: false, describe: 'print the summary as one JSON document {model, rows, totals} instead' },
    ],
    details: 'Layer names follow Keras (conv2d_1..conv2d_94, mixed0..mixed10, avg_pool, predictions); the\nauxiliary head\'s are aux_*. The weights are freshly initialised and not printed.',
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    const [subcommand, ...extra] = positionals;
    if (subcommand === undefined) throw new OptionsError('model needs a subcommand', 'hpctrain model summary [--image-size S] [--num-classes C] [--aux-logits]');
    if (!SUBCOMMANDS.includes(subcommand)) throw new OptionsError(`unknown model subcommand "${subcommand}"`, `subcommands: ${SUBCOMMANDS.join(', ')}`);
    if (extra.length > 0) throw new OptionsError(`unexpected argument "${extra[0]}" after model ${subcommand}`);

    // Building needs no speed, and the cpu backend is there on every node.
    const { tf } = await import('../backend/tf.js');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const { buildInceptionV3 } = await import('../model/inception-v3.js');
    const { formatSummary, summarizeModel } = await import('../model/summary.js');

    // The summary does not depend on the weights, so any seed will do.
    const model = buildInceptionV3(readModelArgs(values, 1));
    try {
      const summary = summarizeModel(model);
      context.stdout(values.json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
    } finally {
      model.dispose();
    }
    return 0;
  },
};
