// `hpctrain train`'s options, in one table (parsing, HPCTRAIN_* fallbacks, validation, --help).
import { BACKEND_CHOICES } from '../backend/select.js';
import { PLACEMENTS } from '../comm/placement.js';
import { STRATEGIES } from '../comm/types.js';
import { OPTIMIZERS } from '../optim/types.js';
import { REQUEUE_STATUS } from '../train/lifecycle.js';
import { RECIPES } from '../train/recipe.js';
import { SCHEDULES } from '../train/schedule.js';
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
  { name: 'recipe', type: 'string', env: 'HPCTRAIN_RECIPE', default: 'default', choices: RECIPES, valueName: 'NAME',
    describe: 'the training settings below, all at once: default (AdamW, a 5% warm-up, cosine decay: learns in a short run) or ' +
      'inception-paper (the paper\'s RMSProp recipe, made for a global batch of 1600 over 100+ epochs); each flag below overrides it' },
  { name: 'optimizer', type: 'string', env: 'HPCTRAIN_OPTIMIZER', choices: OPTIMIZERS, valueName: 'NAME', defaultText: 'adamw; rmsprop with inception-paper',
    describe: 'rmsprop (TensorFlow\'s), adam, adamw (decoupled weight decay) or momentum (SGD)' },
  { name: 'learning-rate', type: 'number', env: 'HPCTRAIN_LEARNING_RATE', min: 0, valueName: 'LR',
    defaultText: 'adam(w): 0.001 x sqrt(global batch / 32); rmsprop: 0.045 x global batch / 1600; momentum: 0.1 x global batch / 256',
    describe: 'the learning rate after warm-up' },
  { name: 'warmup-epochs', type: 'number', env: 'HPCTRAIN_WARMUP_EPOCHS', min: 0, valueName: 'E', defaultText: "5% of the run's steps; 2 epochs with inception-paper",
    describe: 'linear warm-up of the learning rate over the first E epochs (0: none)' },
  { name: 'lr-schedule', type: 'string', env: 'HPCTRAIN_LR_SCHEDULE', choices: SCHEDULES, valueName: 'KIND', defaultText: 'cosine; staircase with inception-paper',
    describe: 'after warm-up: cosine (to 0 at the last step), staircase (x --lr-decay every --lr-decay-epochs) or constant' },
  { name: 'lr-decay', type: 'number', min: 0, max: 1, valueName: 'X', defaultText: '0.94', describe: 'staircase: multiply the learning rate by X every --lr-decay-epochs epochs' },
  { name: 'lr-decay-epochs', type: 'number', min: 0.001, valueName: 'E', defaultText: '2', describe: 'staircase: epochs between learning-rate decays' },
  { name: 'momentum', type: 'number', env: 'HPCTRAIN_MOMENTUM', min: 0, max: 1, valueName: 'M', defaultText: '0.9', describe: 'momentum of rmsprop and momentum' },
  { name: 'nesterov', type: 'boolean', env: 'HPCTRAIN_NESTEROV', describe: 'momentum: Nesterov\'s accelerated gradient' },
  { name: 'rho', type: 'number', min: 0, max: 1, valueName: 'R', defaultText: '0.9', describe: 'rmsprop: decay of the running mean square' },
  { name: 'beta1', type: 'number', min: 0, max: 1, valueName: 'B', defaultText: '0.9', describe: 'adam(w): decay of the first moment' },
  { name: 'beta2', type: 'number', min: 0, max: 1, valueName: 'B', defaultText: '0.999', describe: 'adam(w): decay of the second moment' },
  { name: 'epsilon', type: 'number', min: 0, valueName: 'EPS', defaultText: 'adam(w): 1e-8; rmsprop: 1.0',
    describe: 'added to the denominator (rmsprop: under its square root, as TensorFlow\'s)' },
  { name: 'weight-decay', type: 'number', env: 'HPCTRAIN_WEIGHT_DECAY', min: 0, valueName: 'WD', defaultText: 'adamw: 0.01 decoupled; the others: L2 4e-5',
    describe: 'on convolution and dense kernels only (not biases, not batch norm\'s offsets): L2 added to the gradients, or for adamw decoupled (x (1 - lr x WD) each step)' },
  { name: 'clip-norm', type: 'number', env: 'HPCTRAIN_CLIP_NORM', min: 0, valueName: 'N', defaultText: 'none; 2.0 with inception-paper',
    describe: 'scale the averaged gradients down to global norm N when above it (0: no clipping)' },
  { name: 'label-smoothing', type: 'number', min: 0, max: 1, valueName: 'X', defaultText: '0.1', describe: 'label smoothing of the cross-entropy' },
  { name: 'aux-loss-weight', type: 'number', min: 0, valueName: 'W', defaultText: '0.4', describe: 'weight of the auxiliary loss with --aux-logits' },
  { name: 'ema-decay', type: 'number', env: 'HPCTRAIN_EMA_DECAY', min: 0, max: 1, valueName: 'D', defaultText: 'none; 0.9999 with inception-paper',
    describe: 'moving average of the weights (as tf.train.ExponentialMovingAverage with num_updates), evaluated beside them (0: none)' },
  { name: 'eval-every', type: 'number', env: 'HPCTRAIN_EVAL_EVERY', default: 1, min: 0, valueName: 'E',
    describe: 'evaluate on the validation split every E epochs, and at the end (0: at the end only); a row per evaluation in eval.csv' },
  { name: 'eval-batches', type: 'integer', env: 'HPCTRAIN_EVAL_BATCHES', min: 0, valueName: 'N',
    defaultText: 'the whole validation split; none with synthetic data',
    describe: 'evaluate top-1/top-5 on N validation batches per worker (interleaved, so every class is sampled; 0: no evaluation)' },
  { name: 'run-dir', type: 'string', env: 'HPCTRAIN_RUN_DIR', valueName: 'DIR', defaultText: 'runs/<job id>',
    describe: 'where metrics.csv, summary.json and checkpoints/ go (written by the first worker)' },
  { name: 'resume', type: 'string', env: 'HPCTRAIN_RESUME', default: 'auto', valueName: 'auto|never|FILE',
    describe: 'auto: from the newest valid checkpoint in the run directory, if there is one' },
  { name: 'checkpoint-every', type: 'integer', env: 'HPCTRAIN_CHECKPOINT_EVERY', default: 0, min: 0, valueName: 'STEPS',
    describe: 'checkpoint every STEPS steps (0: only by time and at the end)' },
  { name: 'checkpoint-minutes', type: 'number', env: 'HPCTRAIN_CHECKPOINT_MINUTES', default: 10, min: 0, valueName: 'M',
    describe: 'checkpoint when M minutes have passed since the last one (0: never by time); a crash loses at most this much' },
  { name: 'requeue-signal', type: 'string', env: 'HPCTRAIN_REQUEUE_SIGNAL', default: 'USR1', valueName: 'SIG',
    describe: `USR1 or USR2: on it (as on SIGTERM) every worker stops within 3 steps, after the same one, one checkpoint is written and every rank exits with status ${REQUEUE_STATUS} ("requeue me"); slurm/train.slurm asks Slurm for it ahead of the time limit` },
  { name: 'stop-margin', type: 'number', env: 'HPCTRAIN_STOP_MARGIN', default: 60, min: 0, valueName: 'SECONDS',
    describe: "with a known end of the job (SLURM_JOB_END_TIME, HPCTRAIN_JOB_END, squeue's time left): stop with a checkpoint when 2 steps, a checkpoint and this margin would no longer fit before it" },
  { name: 'keep-checkpoints', type: 'integer', env: 'HPCTRAIN_KEEP_CHECKPOINTS', default: 3, min: 1, valueName: 'K', describe: 'keep the newest K checkpoints' },
  { name: 'log-every', type: 'integer', env: 'HPCTRAIN_LOG_EVERY', default: 1, min: 1, valueName: 'N', describe: 'print a step line every N steps (a terminal gets a progress bar)' },
  { name: 'seed', type: 'integer', env: 'HPCTRAIN_SEED', default: 1, min: 0, max: 2 ** 32 - 1, valueName: 'SEED', describe: 'seeds the weights, the data order and the crops' },
  { name: 'compute-threads', type: 'integer', env: 'HPCTRAIN_COMPUTE_THREADS', min: 1, max: 1024, valueName: 'N',
    defaultText: "the rank's cores (affinity, cgroup quota, SLURM_CPUS_PER_TASK, shared by the ranks of a node), less the decode threads from 8 cores on",
    describe: 'wasm: N threads in the rank, each with a replica of the model and a slice of its batch (batch norm over the whole batch, gradients added in memory); ' +
      'a step the same as one thread\'s to float rounding. tfjs-node: its intra-op threads come from the same core count' },
  { name: 'threads', type: 'integer', env: 'HPCTRAIN_DECODE_THREADS', min: 1, max: 256, valueName: 'N',
    defaultText: "ceil(the rank's cores / 8)", describe: 'image decoding threads' },
  { name: 'prefetch', type: 'integer', default: 2, min: 0, max: 64, valueName: 'N', describe: 'batches decoded ahead of the step' },
  { name: 'comm-timeout', type: 'number', env: 'HPCTRAIN_COMM_TIMEOUT', default: 600, min: 1, valueName: 'SECONDS',
    describe: 'how long a rank waits for a peer\'s message before the job is aborted (a dead or hung peer is found sooner, by its connection)' },
];
