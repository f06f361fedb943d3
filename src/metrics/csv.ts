// CSV files of a run, a row per record, written by the first worker: metrics.csv a row per
// training step as the step ends, eval.csv a row per evaluation. The files outlive the process: a
// crashed or requeued job resumes from its last checkpoint and goes on appending, so a file must
// hold every reported step and none that the resumed model never took.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { OptionsError } from '../errors.js';

/** What rank 0 knows at the end of one step; times in milliseconds. */
export interface StepRecord {
  /** 1-based: steps completed. */
  step: number;
  /** Fractional epoch position, e.g. 1.25. */
  epoch: number;
  /** Images seen by the whole job so far. */
  images: number;
  loss: number;
  /** Batch top-1 on rank 0's batch. */
  top1: number;
  learningRate: number;
  gradNorm: number;
  dataMs: number;
  computeMs: number;
  commMs: number;
  stepMs: number;
  /** Whole job, this step. */
  imagesPerSecond: number;
  /** The rank with the longest step time this step. */
  slowestRank: number;
  slowestStepMs: number;
}

/** One evaluation on the validation split, by the first worker, with the weights it names. */
export interface EvalRecord {
  /** Steps completed when it was taken. */
  step: number;
  epoch: number;
  /** 'trained' (the weights being trained) or 'ema' (their moving average). */
  weights: string;
  images: number;
  top1: number;
  top5: number;
  /** Mean cross-entropy, without label smoothing. */
  loss: number;
}

/** A file's columns, in order: the names are what pandas and spreadsheets will see. The first is the step. */
export interface CsvTable<T> {
  /** What the file is, for messages: "step", "evaluation". */
  kind: string;
  columns: readonly { key: keyof T & string; header: string; text?: boolean }[];
}

export const STEP_TABLE: CsvTable<StepRecord> = {
  kind: 'step',
  columns: [
    { key: 'step', header: 'step' },
    { key: 'epoch', header: 'epoch' },
    { key: 'images', header: 'images' },
    { key: 'loss', header: 'loss' },
    { key: 'top1', header: 'top1' },
    { key: 'learningRate', header: 'learning_rate' },
    { key: 'gradNorm', header: 'grad_norm' },
    { key: 'dataMs', header: 'data_ms' },
    { key: 'computeMs', header: 'compute_ms' },
    { key: 'commMs', header: 'comm_ms' },
    { key: 'stepMs', header: 'step_ms' },
    { key: 'imagesPerSecond', header: 'images_per_second' },
    { key: 'slowestRank', header: 'slowest_rank' },
    { key: 'slowestStepMs', header: 'slowest_step_ms' },
  ],
};

export const EVAL_TABLE: CsvTable<EvalRecord> = {
  kind: 'evaluation',
  columns: [
    { key: 'step', header: 'step' },
    { key: 'epoch', header: 'epoch' },
    { key: 'weights', header: 'weights', text: true },
    { key: 'images', header: 'images' },
    { key: 'top1', header: 'top1' },
    { key: 'top5', header: 'top5' },
    { key: 'loss', header: 'loss' },
  ],
};

/** The step CSV header's column names, in file order. */
export const STEP_COLUMNS: readonly string[] = STEP_TABLE.columns.map((column) => column.header);

// csv-stringify writes numbers as JavaScript does (full precision, NaN, Infinity); this accepts
// exactly those, so a line of zero bytes left by a crashed file system is not taken for a row.
const NUMBER = /^(-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?|NaN|-?Infinity)$/i;
const TEXT = /^[\w.-]+$/;

/** Whether a field is what its column holds: a word, or a number as csv-stringify writes it. */
function fits(column: { text?: boolean }, field: string): boolean {
  return (column.text ? TEXT : NUMBER).test(field);
}

/**
 * Appends one row per record to a CSV file, each row written (fs.writeSync on an fd opened for
 * append) before write() returns, so that a crash loses nothing already reported. Opening an
 * existing file keeps its complete rows up to and including `resumeStep` (every complete row when
 * it is not given); later rows — steps done before a crash but not checkpointed — and a partial
 * last line are dropped by rewriting the file atomically. The header is written only once.
 */
export class RecordCsv<T> {
  readonly path: string;
  private fd: number | undefined;

  private constructor(path: string, fd: number, private readonly table: CsvTable<T>) {
    this.path = path;
    this.fd = fd;
  }

  /** Opens (creating the file and its directory) for appending after `resumeStep`. */
  static open<T>(path: string, table: CsvTable<T>, options: { resumeStep?: number } = {}): RecordCsv<T> {
    mkdirSync(dirname(path), { recursive: true });
    const existing = readIfExists(path);
    const headerLine = headerOf(table);
    if (existing === undefined || (!existing.includes('\n') && headerLine.startsWith(existing))) {
      // New, empty, or cut off inside the header: start the file afresh.
      writeFileAtomic(path, `${headerLine}\n`);
    } else {
      const kept = keptText(path, table, existing, options.resumeStep ?? Infinity);
      if (kept !== existing) writeFileAtomic(path, kept);
    }
    return new RecordCsv(path, openSync(path, 'a'), table);
  }

  /** Appends the record as one row; it is in the file (the OS's cache) when this returns. */
  write(record: T): void {
    if (this.fd === undefined) throw new Error(`${this.path}: write() after close()`);
    writeAll(this.fd, stringify([record as Record<string, unknown>], { columns: this.table.columns.map((column) => column.key) }));
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** metrics.csv: a row per step. */
export const StepCsv = {
  open: (path: string, options: { resumeStep?: number } = {}): RecordCsv<StepRecord> => RecordCsv.open(path, STEP_TABLE, options),
};

/** Reads a step CSV back, numbers parsed; a partial last line (a crash mid-write) is left out. */
export function readStepCsv(path: string): StepRecord[] {
  return readRecordCsv(path, STEP_TABLE);
}

/** Reads a CSV of `table` back, numbers parsed; a partial last line (a crash mid-write) is left out. */
export function readRecordCsv<T>(path: string, table: CsvTable<T>): T[] {
  const text = readFileSync(path, 'utf8');
  const lines = completeLines(text);
  const header = lines[0]?.split(',') ?? [];
  // By name, so that a file with columns added later still reads.
  const indexes = table.columns.map((column) => header.indexOf(column.header));
  const missing = table.columns.filter((_, i) => indexes[i] === -1).map((column) => column.header);
  if (missing.length > 0) throw new Error(`${path}: not a ${table.kind} CSV: no column ${missing.join(', ')} in its header`);
  return lines.slice(1).map((line, row) => {
    const fields = line.split(',');
    const record: Record<string, number | string> = {};
    table.columns.forEach((column, i) => {
      const field = fields[indexes[i]!];
      if (field === undefined || !fits(column, field)) {
        throw new Error(`${path}:${row + 2}: ${column.header} is ${JSON.stringify(field)}, not ${column.text ? 'a word' : 'a number'}`);
      }
      record[column.key] = column.text ? field : Number(field);
    });
    return record as T;
  });
}

function headerOf<T>(table: CsvTable<T>): string {
  return table.columns.map((column) => column.header).join(',');
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The header and the well-formed rows of steps up to `resumeStep`, each line ending in '\n'. */
function keptText<T>(path: string, table: CsvTable<T>, text: string, resumeStep: number): string {
  const [header, ...rows] = completeLines(text);
  if (header !== headerOf(table)) {
    // Appending our columns under another header would make both unreadable.
    throw new OptionsError(`${path} is not a ${table.kind} CSV of this hpctrain: its first line is ${JSON.stringify(header?.slice(0, 120))}`,
      'remove or rename it, or write the run to another --run-dir');
  }
  const kept = rows.filter((line) => {
    const fields = line.split(',');
    return fields.length === table.columns.length && fields.every((field, i) => fits(table.columns[i]!, field))
      && Number(fields[0]) <= resumeStep;
  });
  return [header, ...kept].map((line) => `${line}\n`).join('');
}

/** The lines that end in '\n', without it: what a crash mid-write leaves after the last is not one. */
function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

/** Temp file, fsync, rename: a crash leaves either the old file or the new one, never half of it. */
function writeFileAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    writeAll(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

// writeSync may write fewer bytes than asked (a full disk, a signal); a row must not be cut.
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
}
