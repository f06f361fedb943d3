// `hpctrain train`'s options, in one table (parsing, HPCTRAIN_* fallbacks, validation, --help).
import { BACKEND_CHOICES } from '../backend/select.js';
import { PLACEMENTS } from '../comm/placement.js';
import { STRATEGIES } from '../comm/types.js';
import type { OptionSpec } from '../options.js';
import { JOB_OPTIONS } from './job-options.js';
import { MODEL_OPTIONS } from './model.js';

export const TRAIN_OPTIONS: readonly OptionSpec[] = [
  { name: 'backend', type: 'string', env: 'HPCTRAIN_BACKEND', default: 'auto', choices: BACKEND_CHOICES, valueName: 'NAME',
    describe: 'tensor backend; auto takes tfjs-node-gpu (with a GPU), tfjs-node, wasm, cpu: the first that works' },
  { name: 'data', type: 'string', env: 'HPCTRAIN_DATA', default: 'synthetic', valueName: 'synthetic|DIR',
    describe: 'ImageNet as train/<wnid>/*.JPEG (+ validation/ or val/) or TFRecord shards (train-00000-of-01024, validation-*), or random images' },
  ...MODEL_OPTIONS,
  { name: 'batch-size', type: 'integer', env: 'HPCTRAIN_BATCH_SIZE', default: 8, min: 1, valueName: 'B', describe: 'images per step and worker' },
  { name: 'steps', type: 'integer', env: 'HPCTRAIN_STEPS', default: 0, min: 0, valueName: 'N', describe: 'stop after N steps in all (0: run --epochs)' },
  { name: 'epochs', type: 'number', env: 'HPCTRAIN_EPOCHS', default: 1, min: 0, valueName: 'E', describe: 'passes over the training data' },
  { name: 'strategy', type: 'string', env: 'HPCTRAIN_STRATEGY', default: 'allreduce', choices: STRATEGIES, valueName: 'NAME',
    describe: 'gradient exchange: allreduce (a ring between the workers) or ps (--num-ps parameter servers)' },
  ...JOB_OPTIONS.map((option) => option.name === 'num-ps'
    ? { ...option, describe: 'with --strategy ps: the first K ranks become parameter servers, the rest workers' }
    : option),
  { name: 'ps-placement', type: 'string', env: 'HPCTRAIN_PS_PLACEMENT', default: 'size', choices: PLACEMENTS, valueName: 'HOW',
    describe: 'how variables are spread over the parameter servers: size (balanced) or round-robin' },
  { name: 'learning-rate', type: 'number', env: 'HPCTRAIN_LEARNING_RATE', min: 0, valueName: 'LR',
    defaultText: '0.045 x global batch / 1600 (the paper\'s rate, scaled linearly)', describe: 'RMSProp learning rate after warm-up (decay 0.9, momentum 0.9, epsilon 1.0)' },
  { name: 'warmup-epochs', type: 'number', env: 'HPCTRAIN_WARMUP_EPOCHS', default: 2, min: 0, valueName: 'E',
    describe: 'linear warm-up of the learning rate over the first E epochs (0: none)' },
  { name: 'lr-decay', type: 'number', default: 0.94, min: 0, max: 1, valueName: 'X', describe: 'multiply the learning rate by X every --lr-decay-epochs epochs' },
  { name: 'lr-decay-epochs', type: 'number', default: 2, min: 0.001, valueName: 'E', describe: 'epochs between learning-rate decays' },
  { name: 'clip-norm', type: 'number', env: 'HPCTRAIN_CLIP_NORM', default: 2, min: 0, valueName: 'N',
    describe: 'scale the averaged gradients down to global norm N when above it (0: no clipping)' },
  { name: 'label-smoothing', type: 'number', default: 0.1, min: 0, max: 1, valueName: 'X', describe: 'label smoothing of the cross-entropy' },
  { name: 'aux-loss-weight', type: 'number', default: 0.4, min: 0, valueName: 'W', describe: 'weight of the auxiliary loss with --aux-logits' },
  { name: 'ema-decay', type: 'number', env: 'HPCTRAIN_EMA_DECAY', default: 0.9999, min: 0, max: 1, valueName: 'D',
    describe: 'moving average of the weights, evaluated instead of them (0: none, evaluate the weights)' },
  { name: 'eval-batches', type: 'integer', env: 'HPCTRAIN_EVAL_BATCHES', min: 0, valueName: 'N',
    defaultText: 'the whole validation split; none with synthetic data', describe: 'evaluate top-1/top-5 on N validation batches per worker at the end (0: no evaluation)' },
  { name: 'run-dir', type: 'string', env: 'HPCTRAIN_RUN_DIR', valueName: 'DIR', defaultText: 'runs/<job id>',
    describe: 'where metrics.csv, summary.json and checkpoints/ go (written by the first worker)' },
  { name: 'resume', type: 'string', env: 'HPCTRAIN_RESUME', default: 'auto', valueName: 'auto|never|FILE',
    describe: 'auto: from the newest valid checkpoint in the run directory, if there is one' },
  { name: 'checkpoint-every', type: 'integer', env: 'HPCTRAIN_CHECKPOINT_EVERY', default: 0, min: 0, valueName: 'STEPS',
    describe: 'checkpoint every STEPS steps (0: only by time and at the end)' },
  { name: 'checkpoint-minutes', type: 'number', env: 'HPCTRAIN_CHECKPOINT_MINUTES', default: 30, min: 0, valueName: 'M',
    describe: 'checkpoint when M minutes have passed since the last one (0: never by time)' },
  { name: 'keep-checkpoints', type: 'integer', env: 'HPCTRAIN_KEEP_CHECKPOINTS', default: 3, min: 1, valueName: 'K', describe: 'keep the newest K checkpoints' },
  { name: 'log-every', type: 'integer', env: 'HPCTRAIN_LOG_EVERY', default: 1, min: 1, valueName: 'N', describe: 'print a step line every N steps (a terminal gets a progress bar)' },
  { name: 'seed', type: 'integer', env: 'HPCTRAIN_SEED', default: 1, min: 0, max: 2 ** 32 - 1, valueName: 'SEED', describe: 'seeds the weights, the data order and the crops' },
  { name: 'threads', type: 'integer', env: 'HPCTRAIN_DECODE_THREADS', min: 1, max: 256, valueName: 'N',
    defaultText: 'CPUs - 1, at least 1', describe: 'image decoding threads' },
  { name: 'prefetch', type: 'integer', default: 2, min: 0, max: 64, valueName: 'N', describe: 'batches decoded ahead of the step' },
  { name: 'comm-timeout', type: 'number', env: 'HPCTRAIN_COMM_TIMEOUT', default: 600, min: 1, valueName: 'SECONDS',
    describe: 'how long a rank waits for a peer\'s message before the job is aborted (a dead or hung peer is found sooner, by its connection)' },
];
