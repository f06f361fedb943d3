// Scratch directories for tests. A training run leaves checkpoints of 90 to 270 MB, so a suite
// that kept its directories would fill a small disk (a CI run once failed with ENOSPC). The
// suite's root hooks (root-hooks.ts) give the run one temporary directory, under which every
// os.tmpdir() of the tests and of their child processes lands, remove what each test made after
// it, and remove the rest at the end. HPCTRAIN_KEEP_TEST_DIRS=1 keeps everything for a look.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

export const keepTestDirs = (): boolean => process.env.HPCTRAIN_KEEP_TEST_DIRS === '1';

/** A new directory under the run's temporary directory, removed after the current test (or hook's first test). */
export function scratchDir(prefix = 'hpctrain-it-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes the directories scratchDir made since the last call. */
export function removeScratchDirs(): void {
  for (const dir of made.splice(0)) if (!keepTestDirs()) rmSync(dir, { recursive: true, force: true });
}
