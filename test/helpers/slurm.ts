// The local Slurm cluster for integration tests: brought up once per test run by
// test/cluster/slurm-up.sh. Without root or Slurm the tests are skipped with the reason, except
// under CI=true, where skipping would hide a broken install and so fails instead.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

let ready: Promise<void> | undefined;

export async function requireSlurmCluster(context: Mocha.Context): Promise<void> {
  const missing = process.getuid?.() !== 0 ? 'not running as root' : !existsSync('/usr/bin/sbatch') ? 'slurm-wlm is not installed' : undefined;
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`the Slurm integration tests must run on CI, but ${missing}`);
    console.log(`      (skipped: ${missing}; run as root with slurm-wlm installed, or see test/cluster/README.md)`);
    context.skip();
  }
  // The daemons outlive the test run, so not under its temporary directory (root-hooks.ts), which goes at its end.
  const env = process.env.HPCTRAIN_SYSTEM_TMPDIR ? { TMPDIR: process.env.HPCTRAIN_SYSTEM_TMPDIR } : {};
  ready ??= execa('bash', [`${REPO}test/cluster/slurm-up.sh`], { all: true, timeout: 15 * 60_000, env }).then(
    () => undefined,
    (error: { all?: string; message: string }) => {
      throw new Error(`test/cluster/slurm-up.sh failed:\n${error.all ?? error.message}`);
    },
  );
  await ready;
}

/** Wait for a job submitted without --wait (qsub) and return its final state and exit code. */
export async function waitForJob(jobId: string, timeoutMs = 120_000): Promise<{ state: string; exitCode: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await execa('scontrol', ['show', 'job', jobId]);
    const state = /JobState=(\w+)/.exec(stdout)?.[1] ?? 'UNKNOWN';
    const exitCode = /ExitCode=(\d+:\d+)/.exec(stdout)?.[1] ?? '?';
    if (!['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(state)) return { state, exitCode };
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${state} after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
