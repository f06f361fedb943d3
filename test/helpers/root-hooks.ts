// Mocha root hooks (.mocharc's "require"): the suite runs under a temporary directory of its own,
// set as TMPDIR before any test file loads, so every os.tmpdir() (the tests', the CLI's, the
// batch jobs' through sbatch's exported environment) lands in it and nothing outlives the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepTestDirs, removeScratchDirs } from './scratch.js';

const systemTmp = tmpdir();
const runTmp = mkdtempSync(join(systemTmp, 'hpctrain-tests-'));
process.env.TMPDIR = runTmp;
// For what must outlive the run: the Slurm daemons a test may start (test/helpers/slurm.ts).
process.env.HPCTRAIN_SYSTEM_TMPDIR ??= systemTmp;

export const mochaHooks = {
  afterEach(): void {
    removeScratchDirs();
  },
  afterAll(): void {
    if (keepTestDirs()) console.log(`HPCTRAIN_KEEP_TEST_DIRS=1: the tests' directories are kept under ${runTmp}`);
    else rmSync(runTmp, { recursive: true, force: true });
  },
};
