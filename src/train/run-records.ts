// What the first worker keeps of a run, all under its run directory: metrics.csv (a row per step,
// on disk before the next step starts), eval.csv (a row per evaluation and set of weights),
// checkpoints/ (atomic, checksummed, the newest K kept; written in the background while training
// goes on; never of weights that are not finite), summary.json at the end; and on stdout a line
// per step with throughput and ETA, or a progress bar on a terminal. A resume takes the newest
// valid checkpoint, skipping corrupt ones, and drops the CSV rows after it.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CheckpointWriter, loadNewestCheckpoint, readCheckpoint, supersedeCheckpoints, type CheckpointState } from '../checkpoint/checkpoint.js';
import { CheckpointError, NumericalError } from '../errors.js';
import { EVAL_TABLE, RecordCsv, StepCsv, type EvalRecord, type StepRecord } from '../metrics/csv.js';
import { Progress } from '../metrics/progress.js';
import { summarize, writeSummaryJson, type RunSummary } from '../metrics/summary.js';
import { firstNonFinite } from '../optim/guard.js';
import { slotNames, type OptimizerName, type OptimizerState } from '../optim/types.js';
import { layoutDigest, type ParameterLayout } from '../compute/parameters.js';

export interface RunRecordsOptions {
  runDir: string;
  /** 'auto': the newest valid checkpoint in the run directory, if any; 'never'; or a checkpoint file. */
  resume: string;
  keepCheckpoints: number;
  /** 0: not by steps. */
  checkpointEverySteps: number;
  /** 0: not by time. */
  checkpointEveryMinutes: number;
  /** Stored in every checkpoint, and compared on a resume: what the run was. */
  meta: Record<string, unknown>;
  /** Whose state the checkpoints hold: a resume needs the same. */
  optimizer: OptimizerName;
  maxSteps: number;
  globalBatch: number;
  /** Print a step line every N steps (not on a terminal, which gets a progress bar). */
  logEvery: number;
  terminal: boolean;
  stdout(text: string): void;
  log(line: string): void;
}

export interface Resumed {
  step: number;
  weights: Float32Array;
  state: OptimizerState;
  ema: Float32Array | undefined;
}

/** A checkpoint's array of optimizer slot `slot`. */
const slotArray = (slot: string) => `optimizer.${slot}`;

export class RunRecords {
  readonly checkpointDir: string;
  readonly csvPath: string;
  readonly evalCsvPath: string;
  readonly summaryPath: string;
  private csv: RecordCsv<StepRecord> | undefined;
  private evalCsv: RecordCsv<EvalRecord> | undefined;
  private readonly evaluations: EvalRecord[] = [];
  private progress: Progress | undefined;
  private readonly rows: StepRecord[] = [];
  private lastCheckpointAt = performance.now();
  private writing: Promise<void> = Promise.resolve();
  /** Writes on a thread of its own, so that the steps do not hold the writes up. */
  private readonly writer = new CheckpointWriter();
  /** The step of the checkpoint being written, if one is. */
  private inFlight: number | undefined;
  private skippedDuring: number | undefined;
  private checkpointFailure: unknown;
  /** How long the newest checkpoint took, from the step's end to on disk; undefined before the first. */
  lastCheckpointMs: number | undefined;
  private layoutHash = '';

  constructor(private readonly options: RunRecordsOptions) {
    this.checkpointDir = join(options.runDir, 'checkpoints');
    this.csvPath = join(options.runDir, 'metrics.csv');
    this.evalCsvPath = join(options.runDir, 'eval.csv');
    this.summaryPath = join(options.runDir, 'summary.json');
  }

  /** The checkpoint to start from, checked against this model, or undefined for a fresh start. */
  async resume(layout: ParameterLayout): Promise<Resumed | undefined> {
    this.layoutHash = layoutDigest(layout);
    const { resume, log } = this.options;
    if (resume === 'never') {
      await this.supersede(0, '--resume never starts afresh');
      return undefined;
    }
    const found = resume === 'auto'
      ? await loadNewestCheckpoint(this.checkpointDir, log)
      : { state: await readCheckpoint(resume), path: resume };
    if (!found) return undefined;
    const { state, path } = found;
    if (resume !== 'auto') await this.supersede(state.step, `this run goes on from ${path} (step ${state.step})`);
    if (state.meta.layout !== this.layoutHash) {
      throw new CheckpointError(`${path} holds another model's variables (different layers, classes or auxiliary head)`, {
        hint: 'resume with the same --num-classes, --aux-logits and data, or start afresh with --resume never or another --run-dir',
      });
    }
    for (const key of ['globalBatch', 'seed', 'strategy'] as const) {
      if (state.meta[key] !== this.options.meta[key]) log(`note: ${path} was written with ${key} ${String(state.meta[key])}, this run has ${String(this.options.meta[key])}`);
    }
    const array = (name: string): Float32Array => {
      const values = state.arrays[name];
      if (!values) throw new CheckpointError(`${path} has no "${name}"`, { hint: 'it was not written by this version of hpctrain' });
      return values;
    };
    // Checkpoints from before the optimizers were named hold RMSProp's slots as rmsprop.ms and rmsprop.mom.
    const legacy = state.meta.optimizer === undefined && state.arrays['rmsprop.ms'] !== undefined;
    const optimizer = legacy ? 'rmsprop' : state.meta.optimizer;
    if (optimizer !== this.options.optimizer) {
      throw new CheckpointError(`${path} holds the state of optimizer ${String(optimizer)}, and this run trains with ${this.options.optimizer}`, {
        hint: `resume with --optimizer ${String(optimizer)} (and the recipe it was trained with), or start afresh with --resume never or another --run-dir`,
      });
    }
    const optimizerState = Object.fromEntries(slotNames(this.options.optimizer).map((slot) => [slot, array(legacy ? `rmsprop.${slot}` : slotArray(slot))]));
    log(`resuming from ${path}: step ${state.step}`);
    return { step: state.step, weights: array('weights'), state: optimizerState, ema: state.arrays.ema };
  }

  /** Moves the checkpoints after `step` aside, so that a later --resume auto does not take an older run's. */
  private async supersede(step: number, why: string): Promise<void> {
    const moved = await supersedeCheckpoints(this.checkpointDir, step);
    if (moved.steps.length > 0) {
      this.options.log(`${why}: moved the checkpoints of an earlier run (step ${moved.steps.join(', ')}) to ${moved.to}, where --resume auto does not look`);
    }
  }

  begin(startStep: number): void {
    const { maxSteps, log } = this.options;
    if (startStep >= maxSteps) log(`the checkpoint is at step ${startStep}, at or past the last step (${maxSteps}): nothing to train`);
    this.csv = StepCsv.open(this.csvPath, { resumeStep: startStep });
    this.evalCsv = RecordCsv.open(this.evalCsvPath, EVAL_TABLE, { resumeStep: startStep });
    this.progress = new Progress({ totalSteps: maxSteps, startStep: Math.min(startStep, maxSteps) });
  }

  /**
   * After `step` steps: a checkpoint every so many steps or minutes, and at the end. At most one
   * is written at a time: one due while the one before is still being written is skipped (and
   * said so), except the last, which waits its turn.
   */
  checkpointDue(step: number, maxSteps: number): boolean {
    const { checkpointEverySteps: steps, checkpointEveryMinutes: minutes } = this.options;
    if (step === maxSteps) return true;
    const due = (steps > 0 && step % steps === 0) || (minutes > 0 && performance.now() - this.lastCheckpointAt >= minutes * 60_000);
    if (!due || this.inFlight === undefined) return due;
    if (this.skippedDuring !== this.inFlight) {
      this.skippedDuring = this.inFlight;
      this.options.log(`checkpoint of step ${step} skipped: the one of step ${this.inFlight} is still being written (a slow file system?); the next comes when it is on disk`);
    }
    return false;
  }

  step(record: StepRecord): void {
    this.rows.push(record);
    this.csv?.write(record);
    const progress = this.progress!;
    progress.update(record.step, this.options.globalBatch);
    if (this.options.terminal) {
      this.options.stdout(`\r${progress.bar(30)}${record.step === this.options.maxSteps ? '\n' : ''}`);
    } else if (record.step % this.options.logEvery === 0 || record.step === this.options.maxSteps) {
      this.options.stdout(
        `step ${record.step}/${this.options.maxSteps} epoch ${record.epoch.toFixed(2)} loss=${record.loss.toFixed(4)} top1=${record.top1.toFixed(3)} ` +
          `lr=${record.learningRate.toPrecision(4)} grad_norm=${record.gradNorm.toFixed(3)} img_per_s=${record.imagesPerSecond.toFixed(2)} ` +
          `data_ms=${record.dataMs.toFixed(0)} compute_ms=${record.computeMs.toFixed(0)} comm_ms=${record.commMs.toFixed(0)} ` +
          `slowest=rank${record.slowestRank}:${record.slowestStepMs.toFixed(0)}ms eta=${progress.eta()}\n`,
      );
    }
  }

  /** One evaluation's figures: a row of eval.csv, and the latest of each set of weights goes in the summary. */
  evaluation(record: EvalRecord): void {
    this.evaluations.push(record);
    this.evalCsv?.write(record);
  }

  /**
   * Starts writing a checkpoint of this step (copies: training goes on meanwhile); one at a time.
   * Throws a NumericalError, writing nothing, when a weight or optimizer value is not finite.
   */
  checkpoint(step: number, params: Float32Array, state: OptimizerState, ema: Float32Array | undefined): void {
    const saved: [string, Float32Array][] = [['weights', params], ...(ema ? [['moving average', ema] as [string, Float32Array]] : []),
      ...Object.entries(state).map(([slot, values]) => [`optimizer ${slot}`, values] as [string, Float32Array])];
    for (const [name, values] of saved) {
      const at = firstNonFinite(values);
      if (at >= 0) {
        throw new NumericalError(`after step ${step}, value ${at} of the ${name} is ${values[at]}: not checkpointed`, {
          hint: 'lower --learning-rate (or add --clip-norm), then resume from the last checkpoint',
        });
      }
    }
    const started = performance.now();
    this.lastCheckpointAt = started;
    const checkpoint: CheckpointState = {
      step,
      meta: { ...this.options.meta, optimizer: this.options.optimizer, layout: this.layoutHash, step, writtenAt: new Date().toISOString() },
      arrays: {
        weights: params.slice(), ...Object.fromEntries(Object.entries(state).map(([slot, values]) => [slotArray(slot), values])), ...(ema ? { ema: ema.slice() } : {}),
      },
    };
    this.inFlight = step;
    this.writing = this.writing.then(async () => {
      this.inFlight = step;
      try {
        const path = await this.writer.write(this.checkpointDir, checkpoint, { keep: this.options.keepCheckpoints });
        this.lastCheckpointMs = performance.now() - started;
        this.options.log(`checkpoint ${path} (${(this.lastCheckpointMs / 1000).toFixed(1)} s)`);
        this.checkpointFailure = undefined;
      } catch (error) {
        // Training goes on; the last one must succeed (flush() throws).
        this.checkpointFailure = error;
        this.options.log(`checkpoint of step ${step} FAILED: ${(error as Error).message}`);
      } finally {
        if (this.inFlight === step) this.inFlight = undefined;
      }
    });
  }

  /** After a failure: waits for the checkpoint being written (so that the last good one is on disk), and closes the CSVs. */
  async abandon(): Promise<void> {
    await this.writing;
    await this.writer.close();
    this.csv?.close();
    this.evalCsv?.close();
  }

  /** Waits for the checkpoint being written; throws if the last one failed. Closes the CSV. */
  async flush(): Promise<void> {
    await this.writing;
    await this.writer.close();
    this.csv?.close();
    this.evalCsv?.close();
    if (this.checkpointFailure) {
      throw new CheckpointError(`the last checkpoint could not be written to ${this.checkpointDir}`, {
        cause: this.checkpointFailure, hint: 'is the file system full or read-only? the metrics up to the last step are in metrics.csv',
      });
    }
  }

  /** The summary of this process's steps (and whatever the caller adds), printed and written as JSON. */
  finish(extra: Record<string, unknown>): RunSummary {
    const latest = (weights: string) => this.evaluations.filter((e) => e.weights === weights).at(-1);
    const evaluation = this.evaluations.length > 0 ? { trained: latest('trained'), ema: latest('ema'), csv: this.evalCsvPath } : undefined;
    const summary = summarize(this.rows, { ...extra, eval: evaluation, runDir: this.options.runDir, metrics: this.csvPath, checkpoints: this.checkpointDir });
    writeSummaryJson(this.summaryPath, summary);
    return summary;
  }
}
