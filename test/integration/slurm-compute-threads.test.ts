// Compute threads through the real batch script on the real local Slurm cluster: 2 ranks (one per
// node), 2 compute threads each, under sbatch --wait.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { readStepCsv } from '../../src/metrics/csv.js';
import { scratchDir } from '../helpers/scratch.js';
import { REPO, requireSlurmCluster } from '../helpers/slurm.js';

describe('compute threads on the local Slurm cluster', function () {
  this.timeout(300_000);
  before(async function () {
    await requireSlurmCluster(this);
  });

  it('sbatch --wait slurm/train.slurm: 2 ranks x 2 compute threads train, every worker and replica ends with the same weights', async () => {
    const work = scratchDir();
    const result = await execa('sbatch', ['--wait', '--nodes=2', `--output=${work}/slurm-%j.out`,
      `--export=ALL,HPCTRAIN_RUN_DIR=${work}/run,HPCTRAIN_DATA=synthetic,HPCTRAIN_IMAGE_SIZE=75,HPCTRAIN_BATCH_SIZE=4,HPCTRAIN_STEPS=2,` +
        'HPCTRAIN_NUM_CLASSES=4,HPCTRAIN_COMPUTE_THREADS=2',
      'slurm/train.slurm'], { cwd: REPO, reject: false });
    const jobId = /Submitted batch job (\d+)/.exec(result.stdout)?.[1];
    const output = jobId ? readFileSync(join(work, `slurm-${jobId}.out`), 'utf8') : '';
    assert.equal(result.exitCode, 0, `${result.stderr}\n${output}`);
    assert.match(output, /: 2 compute thread\(s\), 2 images or fewer each/);
    assert.match(output, /batch 4 per worker x 2 workers, 2 steps on wasm with 2 compute threads, ring allreduce/);
    assert.match(output, /the replicas of all 2 compute threads hold these weights, bit for bit/);
    const digests = [...output.matchAll(/^weights sha256=([0-9a-f]{64})$/gm)].map((m) => m[1]);
    assert.equal(digests.length, 2, output);
    assert.equal(new Set(digests).size, 1, output);
    assert.deepEqual(readStepCsv(join(work, 'run', 'metrics.csv')).map((r) => r.step), [1, 2]);
  });
});
