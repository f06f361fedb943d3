import assert from 'node:assert/strict';
import { explainBindingError, selectBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { OptionsError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { createRequire } from 'node:module';

/** These tests describe a node without tfjs-node (CI, and any node without internet at install). */
function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node/package.json');
    return true;
  } catch {
    return false;
  }
}

function skipWhereTfjsNodeIsInstalled(context: Mocha.Context): void {
  if (!tfjsNodeInstalled()) return;
  console.log('      (skipped: @tensorflow/tfjs-node is installed here, so auto would pick it)');
  context.skip();
}

describe('backend selection', function () {
  this.timeout(60_000);
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('auto passes over the tfjs-node backends that are not here and picks wasm, saying why', async function () {
    skipWhereTfjsNodeIsInstalled(this);
    const selected = await selectBackend('auto', 0);
    assert.equal(selected.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(selected.attempts.map((a) => [a.name, a.ok]), [['tfjs-node-gpu', false], ['tfjs-node', false], ['wasm', true]]);
    assert.match(selected.attempts[0]!.reason, /no GPU visible/);
    assert.match(selected.attempts[1]!.reason, /@tensorflow\/tfjs-node is not installed/);
    assert.match(selected.attempts[1]!.fix!, /npm install @tensorflow\/tfjs-node@4\.22\.0/);
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'the wasm gradient kernels are registered');
  });

  it('an explicit backend that does not load is an error with the fix', async function () {
    skipWhereTfjsNodeIsInstalled(this);
    await assert.rejects(selectBackend('tfjs-node-gpu', 1), (error: unknown) => {
      assert.ok(error instanceof OptionsError);
      assert.match(error.message, /^--backend tfjs-node-gpu: @tensorflow\/tfjs-node-gpu is not installed$/);
      return true;
    });
    assert.equal((await selectBackend('cpu', 0)).name, 'cpu');
  });

  it('explains the failures seen on clusters', () => {
    const cuda = explainBindingError('@tensorflow/tfjs-node-gpu',
      new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory'));
    assert.match(cuda.message, /cannot load libcudart\.so\.11\.0/);
    assert.match(cuda.fix!, /CUDA 11\.2 and cuDNN 8\.1.*CUDA 12 machine/);
    const binding = explainBindingError('@tensorflow/tfjs-node', new Error("Cannot find module '/x/lib/napi-v8/tfjs_binding.node'"));
    assert.match(binding.message, /installed without its native library \(tfjs_binding\.node\)/);
    assert.match(binding.fix!, /npm rebuild @tensorflow\/tfjs-node/);
    const missing = explainBindingError('@tensorflow/tfjs-node', Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node'"), { code: 'ERR_MODULE_NOT_FOUND' }));
    assert.equal(missing.message, '@tensorflow/tfjs-node is not installed');
  });
});

describe('hpctrain doctor', function () {
  this.timeout(60_000);
  it('reports each backend with the reason, and exits 0 when one can train', async function () {
    skipWhereTfjsNodeIsInstalled(this);
    const result = await runCli(['doctor']);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /^backend +wasm +ok +@tensorflow\/tfjs-backend-wasm 4\.22\.0, SIMD on/m);
    assert.match(result.stdout, /^backend +tfjs-node +NO +@tensorflow\/tfjs-node is not installed\n +fix: /m);
    assert.match(result.stdout, /^can train +with wasm/m);
    const json = JSON.parse((await runCli(['doctor', '--json'])).stdout) as { trainable: string[]; packages: Record<string, string | null> };
    assert.deepEqual(json.trainable, ['wasm']);
    assert.equal(json.packages['@tensorflow/tfjs-core'], '4.22.0');
  });
});
