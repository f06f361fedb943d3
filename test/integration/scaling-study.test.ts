// The scaling study end to end, as real jobs: bench/scaling/sweep.js through the local launcher,
// sbatch on the local Slurm cluster (1, 2 and 3 nodes, each strategy) and qsub through the Torque
// wrappers, then collect, plot and predict on what the jobs left; and the clear errors for bad
// input (an unknown strategy, more nodes than the partition has, a run directory without a summary).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import sharp from 'sharp';
import { readManifest } from '../../bench/scaling/manifest.js';
import { readStudyCsv, type StudyRow } from '../../bench/scaling/table.js';
import { scratchDir } from '../helpers/scratch.js';
import { REPO, requireSlurmCluster } from '../helpers/slurm.js';

const BENCH = fileURLToPath(new URL('../../bench/', import.meta.url));
const SMALL = ['--image-size', '75', '--batch-size', '2', '--steps', '2', '--warmup-steps', '1', '--classes', '4', '--set', 'COMPUTE_THREADS=1'];

function script(name: string, args: string[]) {
  return execa(process.execPath, [join(BENCH, name), ...args], { cwd: REPO, reject: false, all: true, stdin: 'ignore', timeout: 900_000 });
}

/** The rows of a finished study are sane: every job ok, its figures positive, its shares a whole, speed-up and efficiency against the 1-node run. */
function checkRows(rows: StudyRow[], expected: Array<[nodes: number, strategy: string, workers: number]>, output: string): void {
  const jobs = rows.filter((r) => r.kind === 'job');
  assert.deepEqual(jobs.map((r) => [r.nodes, r.strategy, r.workers]), expected, output);
  const baseline = rows.find((r) => r.kind === 'study' && r.nodes === 1 && r.strategy === 'allreduce')!;
  for (const row of rows) {
    assert.equal(row.state, 'ok', `${row.key}: ${row.reason}\n${output}`);
    assert.equal(row.timedSteps, 2, row.key);
    assert.ok(row.imagesPerSecond! > 0 && row.imagesPerSecondSe! >= 0 && row.imagesPerSecondSe! < row.imagesPerSecond!, `${row.key}: ${row.imagesPerSecond} +- ${row.imagesPerSecondSe}`);
    assert.ok(row.stepMsMedian! > 0 && row.stepMsP90! >= row.stepMsMedian!, row.key);
    assert.ok(Math.abs(row.dataShare! + row.computeShare! + row.commShare! - 1) < 0.01, `${row.key}: the shares add up to ${row.dataShare! + row.computeShare! + row.commShare!}`);
    assert.ok(Math.abs(row.speedup! - row.imagesPerSecond! / baseline.imagesPerSecond!) < 0.01, row.key);
    assert.ok(Math.abs(row.efficiency! - row.speedup! / row.nodes) < 0.01, row.key);
    assert.equal(row.globalBatch, row.workers * 2, row.key);
    assert.equal(row.gradientBytes! % 4, 0);
    assert.equal(row.backend, 'wasm');
  }
  assert.equal(baseline.efficiency, 1);
}

async function checkPlots(out: string): Promise<void> {
  for (const name of ['throughput', 'efficiency', 'breakdown']) {
    const svg = readFileSync(join(out, `${name}.svg`), 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>$/);
    assert.match(svg, /nodes/);
    assert.match(svg, /Inception-V3 75x75, batch 2 per worker \(weak scaling\), wasm/);
    const png = await sharp(join(out, `${name}.png`)).metadata();
    assert.equal(png.format, 'png');
    assert.ok(png.width! > 400 && png.height! > 300, `${name}.png is ${png.width}x${png.height}`);
  }
}

describe('the scaling study (bench/scaling), real jobs', function () {
  this.timeout(900_000);

  it('answers bad input with what to do: no --via, an unknown strategy, collect of a folder without a study', async () => {
    const out = scratchDir();
    const noVia = await script('scaling/sweep.js', ['--nodes', '1']);
    assert.equal(noVia.exitCode, 1);
    assert.match(noVia.all, /^error: --via is required: use slurm \(sbatch\), pbs \(qsub\) or local/m);
    const strategy = await script('scaling/sweep.js', ['--via', 'local', '--strategies', 'allreduce,mirrored', '--out', out]);
    assert.equal(strategy.exitCode, 1);
    assert.match(strategy.all, /^error: --strategies: "mirrored" is not a strategy; use allreduce, ps \(one parameter server\) or ps:K/m);
    const collect = await script('scaling/collect.js', ['--out', out]);
    assert.equal(collect.exitCode, 1);
    assert.match(collect.all, /manifest\.json does not exist; run bench\/scaling\/sweep\.js with --out/);
    assert.ok(!existsSync(join(out, 'manifest.json')), 'a refused sweep wrote a manifest');
  });

  it('--via local: sweeps 1 and 2 ranks with allreduce and ps, goes on from its manifest, collects, plots and predicts; a run directory without a summary is reported', async () => {
    const out = scratchDir();
    const args = ['--via', 'local', '--nodes', '1,2', '--strategies', 'allreduce,ps', ...SMALL, '--exchange', '--out', out];
    const sweep = await script('scaling/sweep.js', args);
    assert.equal(sweep.exitCode, 0, sweep.all);
    assert.match(sweep.all, /sweep skipped nodes=1 strategy=ps:1: ps:1 needs more than 1 rank/);
    assert.deepEqual(readManifest(join(out, 'manifest.json')).jobs.map((j) => [j.key, j.attempts.length, j.attempts[0]!.exitCode]),
      [['n1-allreduce-r1', 1, 0], ['n2-allreduce-r1', 1, 0], ['n2-ps1-r1', 1, 0]]);
    // Again with the same options: nothing to do. With others: refused, the study kept.
    const again = await script('scaling/sweep.js', args);
    assert.equal(again.exitCode, 0, again.all);
    assert.equal((again.all.match(/: done before/g) ?? []).length, 3, again.all);
    assert.deepEqual(readManifest(join(out, 'manifest.json')).jobs.map((j) => j.attempts.length), [1, 1, 1]);
    const other = await script('scaling/sweep.js', [...args, '--repeats', '2']);
    assert.equal(other.exitCode, 1);
    assert.match(other.all, /holds another study \(its settings differ/);

    const collect = await script('scaling/collect.js', ['--out', out]);
    assert.equal(collect.exitCode, 0, collect.all);
    assert.match(collect.all, /^scaling kind=study nodes=2 strategy=ps:1 workers=1 repeats=1 img_per_s=\d+\.\d\d se=\d+\.\d\d .*efficiency=0\.\d{3}$/m);
    checkRows(readStudyCsv(join(out, 'scaling.csv')), [[1, 'allreduce', 1], [2, 'allreduce', 2], [2, 'ps:1', 1]], collect.all);

    const plot = await script('scaling/plot.js', ['--out', out]);
    assert.equal(plot.exitCode, 0, plot.all);
    await checkPlots(out);

    // The exchange, measured here (--exchange: bench/allreduce on 2 ranks), is what predict fits on.
    assert.match(sweep.all, /^sweep exchange: bench\/allreduce here on 2 ranks/m);
    assert.match(again.all, /^sweep exchange: measured before/m);
    assert.match(readFileSync(join(out, 'logs', 'allreduce.out'), 'utf8'), /^allreduce n=2 bytes=95334272 impl=hpctrain-ring ms=[\d.]+ busbw_GBps=[\d.]+$/m);
    const predict = await script('scaling/predict.js', ['--out', out]);
    assert.equal(predict.exitCode, 0, predict.all);
    assert.match(predict.all, /^predict fit impl=ring alpha_ms=\d+\.\d{3} beta_GBps=\d+\.\d{3} points=4 rms_error=/m);
    assert.match(predict.all, /^predict fit impl=ps alpha_ms=\d+\.\d{3} beta_GBps=\d+\.\d{3} points=4 rms_error=/m);
    assert.match(predict.all, /^predict check nodes=2 strategy=allreduce measured_img_per_s=[\d.]+ predicted_img_per_s=[\d.]+ error=[+-][\d.]+%/m);
    for (const nodes of [16, 64, 128, 512]) {
      for (const strategy of ['allreduce', 'ps:1']) {
        const line = new RegExp(`^predict nodes=${nodes} strategy=${strategy} workers=${strategy === 'ps:1' ? nodes - 1 : nodes} step_ms=\\d+ comm_ms=\\d+ img_per_s=([\\d.]+) efficiency=([\\d.]+) \\(prediction\\)$`, 'm').exec(predict.all);
        assert.ok(line, `no prediction for ${nodes} nodes (${strategy}):\n${predict.all}`);
        assert.ok(Number(line[1]) > 0 && Number(line[2]) > 0 && Number(line[2]) <= 1.05, line[0]);
      }
    }

    // A run directory without its summary: the job is reported by id and reason, not dropped.
    const manifest = readManifest(join(out, 'manifest.json'));
    const lost = manifest.jobs[2]!.attempts[0]!;
    rmSync(join(lost.runDir, 'summary.json'));
    const partial = await script('scaling/collect.js', ['--out', out]);
    assert.equal(partial.exitCode, 3, partial.all);
    assert.match(partial.all, new RegExp(`^scaling failed job=${lost.jobId} key=n2-ps1-r1 nodes=2 strategy=ps:1: no summary\\.json in ${lost.runDir}: exit status 0`, 'm'));
    const rows = readStudyCsv(join(out, 'scaling.csv'));
    assert.deepEqual(rows.map((r) => [r.kind, r.key, r.state]), [['job', 'n1-allreduce-r1', 'ok'], ['job', 'n2-allreduce-r1', 'ok'], ['job', 'n2-ps1-r1', 'failed'],
      ['study', 'n1-allreduce', 'ok'], ['study', 'n2-allreduce', 'ok'], ['study', 'n2-ps1', 'failed']]);
    // Swept again, it runs that job once more, and only that one.
    const rerun = await script('scaling/sweep.js', args);
    assert.equal(rerun.exitCode, 0, rerun.all);
    assert.deepEqual(readManifest(join(out, 'manifest.json')).jobs.map((j) => j.attempts.length), [1, 1, 2]);
    assert.equal((await script('scaling/collect.js', ['--out', out])).exitCode, 0);
  });

  it('--via local --strong: a fixed global batch split over the workers, collected as strong scaling', async () => {
    const out = scratchDir();
    const small = SMALL.map((arg, i) => (SMALL[i - 1] === '--batch-size' ? '4' : arg));
    const sweep = await script('scaling/sweep.js', ['--via', 'local', '--nodes', '1,2', '--strategies', 'allreduce', ...small, '--strong', '--out', out]);
    assert.equal(sweep.exitCode, 0, sweep.all);
    assert.match(sweep.all, /^sweep 2 job\(s\) via local, strong scaling/m);
    const collect = await script('scaling/collect.js', ['--out', out]);
    assert.equal(collect.exitCode, 0, collect.all);
    const jobs = readStudyCsv(join(out, 'scaling.csv')).filter((r) => r.kind === 'job');
    assert.deepEqual(jobs.map((r) => [r.nodes, r.workers, r.batchSize, r.globalBatch, r.scaling, r.state]), [[1, 1, 4, 4, 'strong', 'ok'], [2, 2, 2, 4, 'strong', 'ok']]);
    // Each job trained with that batch: its summary says so.
    for (const [i, job] of readManifest(join(out, 'manifest.json')).jobs.entries()) {
      const summary = JSON.parse(readFileSync(join(job.attempts[0]!.runDir, 'summary.json'), 'utf8')) as { batchSize: number; globalBatch: number; job: { ranks: number } };
      assert.deepEqual([summary.batchSize, summary.globalBatch, summary.job.ranks], [[4, 4, 1], [2, 4, 2]][i]);
    }
    assert.match(collect.all, /scaling=strong$/m);
  });

  describe('on the local Slurm cluster', () => {
    before(async function () {
      await requireSlurmCluster(this);
    });

    it('--via slurm --exchange: the exchange across 2 and 3 nodes with srun, then 1, 2 and 3 nodes with allreduce and ps, one job after another; collected with the nodes each job had, plotted and predicted', async () => {
      const out = scratchDir();
      const args = ['--via', 'slurm', '--nodes', '1,2,3', '--strategies', 'allreduce,ps', ...SMALL, '--time', '10:00', '--exchange', '--out', out];
      const sweep = await script('scaling/sweep.js', args);
      assert.equal(sweep.exitCode, 0, sweep.all);
      const exchange = /^sweep exchange: submitted job (\d+) \(bench\/allreduce --srun on 2,3 nodes\)/m.exec(sweep.all)?.[1];
      assert.ok(exchange, sweep.all);
      const ids = [...sweep.all.matchAll(/: submitted job (\d+) \(/g)].map((m) => m[1]!).filter((id) => id !== exchange);
      assert.equal(ids.length, 5, sweep.all);
      // One after another, the exchange first: each job waits for the one before it.
      const chain = [exchange, ...ids];
      for (let i = 1; i < chain.length; i++) {
        assert.match(String((await execa('scontrol', ['show', 'job', chain[i]!])).stdout), new RegExp(`Dependency=afterany:${chain[i - 1]}\\b`), `job ${chain[i]}`);
      }
      // Swept again while they run: nothing new is submitted, and --wait waits for them all.
      const again = await script('scaling/sweep.js', [...args, '--wait']);
      assert.equal(again.exitCode, 0, again.all);
      assert.doesNotMatch(again.all, /submitted job/);
      assert.equal((again.all.match(/: job \d+ is still (PENDING|RUNNING|CONFIGURING)/g) ?? []).length + (again.all.match(/: done before/g) ?? []).length, 5, again.all);
      const collect = await script('scaling/collect.js', ['--out', out]);
      assert.equal(collect.exitCode, 0, `${collect.all}\n${readLogs(out)}`);
      const rows = readStudyCsv(join(out, 'scaling.csv'));
      checkRows(rows, [[1, 'allreduce', 1], [2, 'allreduce', 2], [2, 'ps:1', 1], [3, 'allreduce', 3], [3, 'ps:1', 2]], collect.all);
      assert.deepEqual(rows.filter((r) => r.kind === 'job').map((r) => [r.jobId, r.hosts]),
        ids.map((id, i) => [id, ['node1', 'node1 node2', 'node1 node2', 'node1 node2 node3', 'node1 node2 node3'][i]]));
      const plot = await script('scaling/plot.js', ['--out', out]);
      assert.equal(plot.exitCode, 0, plot.all);
      await checkPlots(out);
      // The exchange was measured across the nodes, one rank on each, and predict fits on it.
      const measured = readFileSync(join(out, 'logs', 'allreduce.out'), 'utf8');
      assert.match(measured, /^allreduce n=3 bytes=95334272 impl=hpctrain-ring ms=[\d.]+/m);
      assert.match(measured, /^allreduce n=2 bytes=95334272 impl=hpctrain-ps ms=[\d.]+/m);
      assert.match(measured, /^allreduce n=3 impl=hpctrain-ps skipped: 3 workers and a server need 4 nodes, and the allocation has 3/m);
      const predict = await script('scaling/predict.js', ['--out', out]);
      assert.equal(predict.exitCode, 0, predict.all);
      assert.match(predict.all, new RegExp(`allreduce_csv=${join(out, 'allreduce.csv')} `));
      assert.match(predict.all, /^predict fit impl=ring .* points=8 /m);
      assert.match(predict.all, /^predict fit impl=ps .* points=4 /m);
      assert.match(predict.all, /^predict check nodes=3 strategy=ps:1 measured_img_per_s=/m);
      assert.match(predict.all, /^predict nodes=128 strategy=allreduce workers=128 .* \(prediction\)$/m);
    });

    it('--via slurm: more nodes than the partition has is refused before anything is submitted; a job that fails is reported with its id and the error from its log', async () => {
      const out = scratchDir();
      const tooMany = await script('scaling/sweep.js', ['--via', 'slurm', '--nodes', '1,4', ...SMALL, '--out', out]);
      assert.equal(tooMany.exitCode, 1);
      assert.match(tooMany.all, /^error: --nodes asks for 4 nodes, but the cluster has 3 \(sinfo\); drop the larger counts or name another partition/m);
      assert.ok(!existsSync(join(out, 'manifest.json')));
      const failing = await script('scaling/sweep.js', ['--via', 'slurm', '--nodes', '1', '--strategies', 'allreduce', ...SMALL, '--set', 'BACKEND=tfjs-node', '--wait', '--out', out]);
      assert.equal(failing.exitCode, 0, failing.all);
      const id = /: submitted job (\d+) /.exec(failing.all)?.[1];
      const collect = await script('scaling/collect.js', ['--out', out]);
      assert.equal(collect.exitCode, 3, collect.all);
      assert.match(collect.all, new RegExp(`^scaling failed job=${id} key=n1-allreduce-r1 nodes=1 strategy=allreduce: no summary\\.json in \\S+: FAILED 2:0; hpctrain train: error: --backend tfjs-node: @tensorflow/tfjs-node is not installed \\(log \\S+\\.out\\)$`, 'm'));
      assert.match(collect.all, /^scaling failed job=- key=n1-allreduce nodes=1 strategy=allreduce: none of its 1 job\(s\) finished$/m);
    });
  });

  describe('through qsub and the Torque wrappers', () => {
    before(async function () {
      await requireSlurmCluster(this);
    });

    it('--via pbs: 1 and 2 nodes with allreduce, submitted with qsub -W depend=afterany, collected and plotted', async () => {
      const out = scratchDir();
      const sweep = await script('scaling/sweep.js', ['--via', 'pbs', '--nodes', '1,2', '--strategies', 'allreduce', ...SMALL, '--time', '00:10:00', '--wait', '--out', out]);
      assert.equal(sweep.exitCode, 0, sweep.all);
      assert.equal([...sweep.all.matchAll(/: submitted job (\d+)/g)].length, 2, sweep.all);
      const collect = await script('scaling/collect.js', ['--out', out]);
      assert.equal(collect.exitCode, 0, `${collect.all}\n${readLogs(out)}`);
      checkRows(readStudyCsv(join(out, 'scaling.csv')), [[1, 'allreduce', 1], [2, 'allreduce', 2]], collect.all);
      assert.equal((await script('scaling/plot.js', ['--out', out])).exitCode, 0);
      await checkPlots(out);
    });
  });
});

function readLogs(out: string): string {
  return readManifest(join(out, 'manifest.json')).jobs.flatMap((j) => j.attempts).map((a) => (existsSync(a.log) ? `--- ${a.log}\n${readFileSync(a.log, 'utf8')}` : `--- ${a.log}: none`)).join('\n');
}
