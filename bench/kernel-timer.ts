// Wall time per kernel of one backend, for bench/profile-step: every registered kernel's
// kernelFunc is wrapped in place (the engine and kernels that call other kernels by name both
// read it from the registry at call time), so calls nested in hpctrain's kernels are seen too.
// Each call's self time (its own minus that of the kernels it called) is charged to its phase
// (the engine's 'forward' or 'backward' scope, else the phase the caller set), its name, the
// outermost kernel it ran in, and its shapes. A kernel's self time is JavaScript for hpctrain's
// own kernels and the wasm call (plus a little glue) for tfjs-backend-wasm's.
import { performance } from 'node:perf_hooks';
import { tf } from '../src/backend/tf.js';

export interface KernelFigure {
  phase: string;
  kernel: string;
  /** The outermost kernel this call ran inside, or '' for a call the engine made. */
  parent: string;
  /** Input shapes and attributes, e.g. "x=8x35x35x288 filter=3x3x288x384 strides=2 pad=valid". */
  shape: string;
  calls: number;
  selfMs: number;
  /** Floating-point operations of the calls (convolutions and matrix products; 0 for others). */
  flops: number;
}

interface Frame {
  started: number;
  childMs: number;
}

/** The attributes that tell one call of a kernel from another of the same input shapes. */
const SHAPE_ATTRS = ['strides', 'pad', 'dilations', 'filterSize', 'filterShape', 'inputShape', 'perm', 'axis', 'begin', 'size', 'shape', 'reductionIndices'];

export class KernelTimer {
  /** The phase of calls made outside the engine's forward and backward scopes. */
  phase = 'other';
  private readonly figures = new Map<string, KernelFigure>();
  private readonly stack: Frame[] = [];
  private readonly parents: string[] = [];
  private readonly restore: (() => void)[] = [];

  constructor(private readonly backendName: string) {}

  install(): void {
    for (const config of tf.getKernelsForBackend(this.backendName)) {
      const original = config.kernelFunc;
      const timer = this;
      const wrapped = function (this: unknown, args: Parameters<tf.KernelFunc>[0]) {
        return timer.time(config.kernelName, args.inputs, args.attrs ?? {}, () => original.call(this, args));
      };
      (config as { kernelFunc: tf.KernelFunc }).kernelFunc = wrapped as tf.KernelFunc;
      this.restore.push(() => { (config as { kernelFunc: tf.KernelFunc }).kernelFunc = original; });
    }
    // dataSync and friends: copies out of the backend, charged as a kernel of their own.
    const backend = tf.engine().findBackend(this.backendName) as unknown as { readSync(dataId: object): unknown };
    const readSync = backend.readSync;
    backend.readSync = (dataId: object) => this.time('readSync', {}, {}, () => readSync.call(backend, dataId));
    this.restore.push(() => { backend.readSync = readSync; });
  }

  uninstall(): void {
    for (const undo of this.restore.splice(0)) undo();
  }

  reset(): void {
    this.figures.clear();
  }

  results(): KernelFigure[] {
    return [...this.figures.values()];
  }

  private time<T>(kernel: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap, run: () => T): T {
    const frame: Frame = { started: performance.now(), childMs: 0 };
    const parent = this.parents[0] ?? '';
    this.stack.push(frame);
    this.parents.push(kernel);
    let result: T | undefined;
    try {
      result = run();
      return result;
    } finally {
      const elapsed = performance.now() - frame.started;
      this.stack.pop();
      this.parents.pop();
      const outer = this.stack[this.stack.length - 1];
      if (outer) outer.childMs += elapsed;
      this.charge(kernel, parent, describe(inputs, attrs), elapsed - frame.childMs, flopsOf(kernel, inputs, attrs, result));
    }
  }

  private charge(kernel: string, parent: string, shape: string, selfMs: number, flops: number): void {
    const phase = currentPhase() ?? this.phase;
    const key = `${phase}|${parent}|${kernel}|${shape}`;
    const figure = this.figures.get(key);
    if (figure) {
      figure.calls++;
      figure.selfMs += selfMs;
      figure.flops += flops;
    } else {
      this.figures.set(key, { phase, kernel, parent, shape, calls: 1, selfMs, flops });
    }
  }
}

/** 'backward' or 'forward' inside the engine's gradient scopes (backward first: it is the inner one). */
function currentPhase(): string | undefined {
  const scopes = (tf.engine().state as unknown as { scopeStack: { name: string }[] }).scopeStack;
  let phase: string | undefined;
  for (const scope of scopes) {
    if (scope.name === 'backward') return 'backward';
    if (scope.name === 'forward') phase = 'forward';
  }
  return phase;
}

/** 2 x multiply-adds: a convolution's output size times its window, a matrix product's M*N*K per batch. */
function flopsOf(kernel: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap, result: unknown): number {
  const output = (Array.isArray(result) ? result[0] : result) as tf.TensorInfo | undefined;
  if (!output?.shape) return 0;
  const size = output.shape.reduce((a, b) => a * b, 1);
  if (kernel === 'Conv2D' || kernel === 'FusedConv2D') {
    const [kh, kw, ci] = inputs['filter']!.shape as number[];
    return 2 * size * kh! * kw! * ci!;
  }
  if (kernel === 'BatchMatMul' || kernel === '_FusedMatMul') {
    const a = inputs['a']!.shape;
    return 2 * size * (attrs['transposeA'] ? a[a.length - 2]! : a[a.length - 1]!);
  }
  return 0;
}

function describe(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): string {
  const parts = Object.entries(inputs).filter(([, info]) => info).map(([name, info]) => `${name}=${info!.shape.join('x') || 'scalar'}`);
  for (const name of SHAPE_ATTRS) {
    const value = (attrs as Record<string, unknown>)[name];
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.map((v) => (Array.isArray(v) ? v.join(':') : String(v))).join('x') : String(value);
    parts.push(`${name}=${text}`);
  }
  return parts.join(' ');
}
