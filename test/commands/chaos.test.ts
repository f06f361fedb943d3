// The chaos test: kill -9 a random rank at a random step, several times, and start the job again
// each time with the same run directory, as a scheduler's requeue would. Every job ends on the
// uninterrupted run's weights, and metrics.csv holds every step once: nothing is lost or counted
// twice. The seed is printed; HPCTRAIN_CHAOS_SEED=N replays a run.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { CLI, runCli } from '../helpers/cli.js';
import { getFreePortBlock } from '../helpers/ports.js';
import { seededRandom } from '../helpers/random.js';
import { makeTempDir, removeDir } from '../data/helpers.js';

const STEPS = 12;
const KILLS = 3;
const TRAIN = ['train', '--data', 'synthetic', '--image-size', '75', '--batch-size', '2', '--warmup-epochs', '0', '--log-every', '1',
  '--steps', String(STEPS), '--checkpoint-every', '2', '--keep-checkpoints', '2', '--eval-batches', '0', '--compute-threads', '1'];

interface Started {
  ranks: ResultPromise[];
  /** Output of the first worker so far. */
  first(): string;
}

function startJob(size: number, runDir: string, port: number, extra: readonly string[], firstWorker: number): Started {
  const env = { HPCTRAIN_SIZE: String(size), HPCTRAIN_JOB_ID: `chaos-${port}`, HPCTRAIN_PORT: String(port), HPCTRAIN_SECRET: `chaos ${port}` };
  const ranks = Array.from({ length: size }, (_, rank) => execa(process.execPath, [CLI, ...TRAIN, ...extra, '--run-dir', runDir], {
    env: { ...env, HPCTRAIN_RANK: String(rank) }, reject: false, timeout: 240_000, all: true,
  }));
  let output = '';
  ranks[firstWorker]!.all!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  return { ranks, first: () => output };
}

const lastStep = (output: string): number => Math.max(0, ...[...output.matchAll(/^step (\d+)\/\d+ /gm)].map((m) => Number(m[1])));

describe('chaos: kill -9 of a random rank at a random step, again and again', function () {
  this.timeout(900_000);
  let dir: string;
  before(() => { dir = makeTempDir('hpctrain-chaos-'); });
  after(() => removeDir(dir));

  for (const [strategy, size, extra, firstWorker] of [['allreduce', 2, [], 0], ['ps', 3, ['--strategy', 'ps', '--num-ps', '1'], 1]] as const) {
    it(`every restart resumes exactly: the job ends on the uninterrupted weights, every step once in metrics.csv (${strategy})`, async () => {
      const seed = Number(process.env.HPCTRAIN_CHAOS_SEED ?? Date.now() % 1_000_000);
      const random = seededRandom(seed);
      console.log(`      chaos seed ${seed} (HPCTRAIN_CHAOS_SEED=${seed} replays it)`);
      const whole = await runCli(['launch', '-n', String(size), '--', ...TRAIN, ...extra, '--run-dir', join(dir, `whole-${strategy}`)], { timeoutMs: 300_000 });
      assert.equal(whole.exitCode, 0, whole.stderr);
      const uninterrupted = new RegExp(`^\\[rank ${firstWorker}\\] weights sha256=([0-9a-f]{64})$`, 'm').exec(whole.stdout)![1];

      const runDir = join(dir, `chaos-${strategy}`);
      const log: string[] = [];
      let done = 0;
      // Where each run resumed and where its rank was killed: the steps done after the last checkpoint on disk are done again.
      const killedAt: number[] = [];
      const resumedAt: number[] = [];
      for (let kill = 0; kill < KILLS; kill++) {
        const job = startJob(size, runDir, await getFreePortBlock(size + 1), extra, firstWorker);
        // A step of this run, 1 to 4 past where it resumes, on a rank of any role.
        const target = Math.min(STEPS - 1, done + 1 + Math.floor(random() * 4));
        const victim = Math.floor(random() * size);
        while (lastStep(job.first()) < target && job.ranks.every((r) => r.exitCode === null)) await new Promise((resolve) => setTimeout(resolve, 50));
        job.ranks[victim]!.kill('SIGKILL');
        const results = await Promise.all(job.ranks);
        done = lastStep(job.first());
        killedAt.push(done);
        resumedAt.push(Number(/resuming from .*: step (\d+)/.exec(job.first())?.[1] ?? 0));
        log.push(`run ${kill + 1}: resumed at ${resumedAt.at(-1)}, rank ${victim} killed at step ${done} (aimed at ${target})`);
        for (const [rank, result] of results.entries()) {
          if (rank !== victim) assert.notEqual(result.exitCode, 0, `rank ${rank} did not notice rank ${victim}'s death:\n${result.all}`);
        }
      }
      const last = startJob(size, runDir, await getFreePortBlock(size + 1), extra, firstWorker);
      const results = await Promise.all(last.ranks);
      resumedAt.push(Number(/resuming from .*: step (\d+)/.exec(last.first())?.[1] ?? 0));
      const lost = killedAt.map((step, i) => step - resumedAt[i + 1]!);
      for (const result of results) assert.equal(result.exitCode, 0, `${log.join('\n')}\n${result.all}`);
      const digests = results.map((r) => /^weights sha256=([0-9a-f]{64})$/m.exec(String(r.all ?? ''))?.[1]).filter(Boolean);
      assert.equal(digests.length, size - (strategy === 'ps' ? 1 : 0), log.join('\n'));
      for (const digest of digests) assert.equal(digest, uninterrupted, `the job ended elsewhere than the uninterrupted run (seed ${seed}):\n${log.join('\n')}`);
      assert.deepEqual(readStepCsv(join(runDir, 'metrics.csv')).map((r) => r.step), Array.from({ length: STEPS }, (_, i) => i + 1),
        `metrics.csv does not hold every step once (seed ${seed}):\n${log.join('\n')}`);
      console.log(`      ${log.join('; ')}; steps lost per kill: ${lost.join(', ')} (checkpoints every 2 steps)`);
    });
  }
});
