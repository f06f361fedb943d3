// Backend selection: the first backend that loads and works, in order of speed. tfjs-node-gpu and
// tfjs-node are optional (their install downloads libtensorflow, which fails on nodes without
// internet), wasm always installs and trains at useful speed with hpctrain's gradient kernels,
// and the pure-JS cpu backend is the last resort.
import { OptionsError } from '../errors.js';
import { tf } from './tf.js';
import { registerPoolGradKernels } from './pool-grad.js';
import { registerWasmGradKernels } from './wasm-grad-kernels.js';

export const BACKEND_NAMES = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  /** Why it was passed over, or what was loaded. */
  reason: string;
  fix?: string;
}

export interface SelectedBackend {
  name: BackendName;
  attempts: BackendAttempt[];
}

/** Backends that can train Inception-V3 in useful time; cpu computes filter gradients at ~0.004 GFLOP/s. */
export function canTrain(name: BackendName): boolean {
  return name !== 'cpu';
}

/** Loads one backend and makes it current, or throws with the reason. */
async function activate(name: BackendName, gpuCount: number): Promise<string> {
  if (name === 'tfjs-node-gpu' || name === 'tfjs-node') {
    if (name === 'tfjs-node-gpu' && gpuCount === 0) throw new BackendUnavailable('no GPU visible (no /dev/nvidia* device and no GPU from nvidia-smi)');
    const version = await importNodeBinding(`@tensorflow/${name}`);
    if (!tf.findBackend('tensorflow')) {
      throw new BackendUnavailable(`@tensorflow/${name} ${version} registered its backend with another copy of @tensorflow/tfjs-core`,
        `install the version that matches @tensorflow/tfjs-core ${tf.version_core}: npm install @tensorflow/${name}@${tf.version_core}`);
    }
    await setCurrent('tensorflow');
    return `@tensorflow/${name} ${version}`;
  }
  if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmGradKernels();
    registerPoolGradKernels('wasm');
    await setCurrent('wasm');
    return `@tensorflow/tfjs-backend-wasm ${tf.version_core}, SIMD ${(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'on' : 'off'}, 1 thread`;
  }
  await import('@tensorflow/tfjs-backend-cpu');
  registerPoolGradKernels('cpu');
  await setCurrent('cpu');
  return `@tensorflow/tfjs-backend-cpu ${tf.version_core}`;
}

class BackendUnavailable extends Error {
  constructor(message: string, readonly fix?: string) {
    super(message);
  }
}

async function setCurrent(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new BackendUnavailable(`tf.setBackend('${backend}') failed to initialise it`);
  await tf.ready();
  checkTrainingStep();
}

/** A tiny forward and backward convolution: a backend that loads but cannot do this is useless. */
function checkTrainingStep(): void {
  const sum = tf.tidy(() => {
    const x = tf.ones([1, 5, 5, 2]);
    const w = tf.ones([3, 3, 2, 2]);
    const grads = tf.grads((a, b) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, w]);
    return tf.addN(grads.map((g) => tf.sum(g))).dataSync()[0]!;
  });
  // Every input pixel feeds 1 to 4 outputs of 2 channels; every filter tap sees 4-9 ones twice.
  if (!(sum > 0 && Number.isFinite(sum))) throw new BackendUnavailable(`a test convolution gradient gave ${sum}`);
}

async function importNodeBinding(pkg: string): Promise<string> {
  try {
    const module = (await import(pkg)) as { version?: { 'tfjs-node'?: string } };
    return module.version?.['tfjs-node'] ?? 'unknown version';
  } catch (error) {
    throw explainBindingError(pkg, error as Error & { code?: string });
  }
}

/** The failures seen on clusters, with what to do about each. */
export function explainBindingError(pkg: string, error: Error & { code?: string }): BackendUnavailable {
  const message = error.message ?? String(error);
  const gpu = pkg.endsWith('-gpu');
  if (error.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (package|module) '@tensorflow\/tfjs-node/.test(message)) {
    return new BackendUnavailable(`${pkg} is not installed`,
      `it is optional because its install downloads libtensorflow: on a machine with internet run \`npm install ${pkg}@${tf.version_core}\` in this directory, then copy node_modules to the cluster`);
  }
  const missingLibrary = /(lib(cudart|cudnn|cublas|cublasLt|cufft|curand|cusolver|cusparse|tensorflow)[\w.]*\.so[\w.]*)/.exec(message)?.[1];
  if (missingLibrary && /libcud/.test(missingLibrary)) {
    return new BackendUnavailable(`${pkg} cannot load ${missingLibrary}`,
      `tfjs-node-gpu 4.x uses libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1, and needs their libraries (libcudart.so.11.0, libcudnn.so.8). ` +
      `A missing libcudart.so.11.0 on a CUDA 12 machine is the most common cause: load a CUDA 11.x and cuDNN 8 module (e.g. module load cuda/11.2 cudnn/8.1) or install the CUDA 11 runtime, and put its lib64 on LD_LIBRARY_PATH`);
  }
  if (missingLibrary || /tfjs_binding\.node/.test(message)) {
    return new BackendUnavailable(`${pkg} is installed without its native library (${missingLibrary ?? 'tfjs_binding.node'})`,
      `its install script downloads libtensorflow and failed or was skipped: on a machine with internet run \`npm rebuild ${pkg}\`${gpu ? ' (on a GPU node type)' : ''}, then copy node_modules to the cluster`);
  }
  return new BackendUnavailable(`${pkg} failed to load: ${message.split('\n')[0]}`);
}

/**
 * Loads the requested backend, or with 'auto' the first that works of tfjs-node-gpu (when a GPU
 * is visible), tfjs-node, wasm, cpu. Throws OptionsError when an explicitly requested one fails.
 */
export async function selectBackend(requested: BackendName | 'auto', gpuCount: number): Promise<SelectedBackend> {
  const candidates = requested === 'auto' ? BACKEND_NAMES : [requested];
  const attempts: BackendAttempt[] = [];
  for (const name of candidates) {
    try {
      const reason = await activate(name, gpuCount);
      attempts.push({ name, ok: true, reason });
      return { name, attempts };
    } catch (error) {
      const fix = error instanceof BackendUnavailable ? error.fix : undefined;
      attempts.push({ name, ok: false, reason: (error as Error).message, ...(fix ? { fix } : {}) });
    }
  }
  const last = attempts[attempts.length - 1]!;
  throw new OptionsError(`--backend ${requested}: ${last.reason}`, last.fix ?? 'run `hpctrain doctor` to see which backends work here');
}

/** Every backend, each loaded in turn, for `hpctrain doctor`. Leaves the last working one current. */
export async function probeBackends(gpuCount: number): Promise<BackendAttempt[]> {
  const attempts: BackendAttempt[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      attempts.push({ name, ok: true, reason: await activate(name, gpuCount) });
    } catch (error) {
      const fix = error instanceof BackendUnavailable ? error.fix : undefined;
      attempts.push({ name, ok: false, reason: (error as Error).message, ...(fix ? { fix } : {}) });
    }
  }
  return attempts;
}
