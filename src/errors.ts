// One error family for everything a user can cause or meet. The CLI prints `message` (and the
// hint) without a stack trace for these; anything else is a bug and keeps its stack.

export type Phase = 'options' | 'env' | 'rendezvous' | 'cluster' | 'launch' | 'data' | 'comm' | 'checkpoint' | 'compute' | 'train' | 'model';

export interface ErrorContext {
  phase: Phase;
  rank?: number;
  host?: string;
  /** What to try next; printed on its own line after the message. */
  hint?: string;
  cause?: unknown;
}

export class HpcTrainError extends Error {
  readonly phase: Phase;
  readonly rank: number | undefined;
  readonly host: string | undefined;
  readonly hint: string | undefined;
  /** Process exit status the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(message: string, context: ErrorContext) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.phase = context.phase;
    this.rank = context.rank;
    this.host = context.host;
    this.hint = context.hint;
  }
}

/** A bad command-line flag or setting; exit status 2 as for any usage error. */
export class OptionsError extends HpcTrainError {
  override readonly exitCode = 2;
  constructor(message: string, hint?: string) {
    super(message, { phase: 'options', hint });
  }
}

/** A scheduler or launcher variable that is missing or malformed. */
export class EnvironmentError extends HpcTrainError {
  constructor(message: string, hint?: string) {
    super(message, { phase: 'env', hint });
  }
}

export class RendezvousError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'rendezvous' });
  }
}

/** Not every rank joined before the deadline. */
export class RendezvousTimeoutError extends RendezvousError {}

/** The coordinator could not be reached, resolved or bound. */
export class RendezvousConnectionError extends RendezvousError {}

/** The coordinator gave up (deadline, or another rank failed) and told the members so. */
export class RendezvousClosedError extends RendezvousError {}

/** A port this job needs is taken on this host. */
export class PortInUseError extends RendezvousConnectionError {}

export class LaunchError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'launch' });
  }
}

/** The input data: a directory in no layout we know, unreadable shards, too many bad images. */
export class DataError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'data' });
  }
}

/** "rank 3 (nid00004)" or "rank 3" — how every message names a process. */
export function describeRank(rank: number | undefined, host?: string): string {
  if (rank === undefined) return host ?? 'this process';
  return host ? `rank ${rank} (${host})` : `rank ${rank}`;
}

/** The gradient-exchange plane between ranks: a peer that stopped answering, or a socket that failed. */
export class CommError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'comm' });
  }
}

/** Saving or resuming training state: a checkpoint that cannot be written, listed or read. */
export class CheckpointError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'checkpoint' });
  }
}

/** A checkpoint file whose bytes cannot be trusted; resuming skips it for an older one. */
export class CorruptCheckpointError extends CheckpointError {
  readonly path: string;
  /** What is wrong with it, without the file name: "truncated (...)", "checksum mismatch (...)". */
  readonly reason: string;

  constructor(path: string, reason: string, hint?: string) {
    super(`checkpoint ${path} is unusable: ${reason}`, { hint });
    this.path = path;
    this.reason = reason;
  }
}

/** Training went numerically wrong (a non-finite loss, gradient norm or weight); nothing of it was applied or saved. */
export class NumericalError extends HpcTrainError {
  /** Met by every worker at the same point (an averaged figure, the replicas' identical weights), so that they can stop together. */
  readonly everyWorker: boolean;

  constructor(message: string, context: Omit<ErrorContext, 'phase'> & { everyWorker?: boolean } = {}) {
    super(message, { ...context, phase: 'train' });
    this.everyWorker = context.everyWorker ?? false;
  }
}

/** A compute thread failed (its model, its memory, its slice of a batch); the rank's step cannot finish. */
export class ComputeError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'compute' });
  }
}

/** An exported model's directory (hpctrain export, predict): missing, incomplete, or not a TensorFlow.js layers model. */
export class ModelFilesError extends HpcTrainError {
  constructor(message: string, context: Omit<ErrorContext, 'phase'> = {}) {
    super(message, { ...context, phase: 'model' });
  }
}
