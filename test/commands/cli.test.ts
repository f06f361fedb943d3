import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';

describe('hpctrain CLI', function () {
  this.timeout(30_000);

  it('lists its commands in --help and exits 0', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.exitCode, 0);
    for (const name of ['launch', 'rendezvous', 'hostlist']) assert.match(result.stdout, new RegExp(`^  ${name} `, 'm'));
  });

  it('prints each command\'s true --help', async () => {
    const result = await runCli(['rendezvous', '--help']);
    assert.equal(result.exitCode, 0);
    for (const flag of ['--scheduler', '--port', '--iface', '--rendezvous-timeout', '--num-ps', '--output']) assert.ok(result.stdout.includes(flag), flag);
  });

  it('prints the version', async () => {
    const result = await runCli(['--version']);
    assert.match(result.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('expands hostlists as scontrol show hostnames does', async () => {
    const result = await runCli(['hostlist', 'nid[00001-00003,00010],login1']);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'nid00001\nnid00002\nnid00003\nnid00010\nlogin1');
    const tasks = await runCli(['hostlist', '--tasks', '3(x2),1']);
    assert.equal(tasks.stdout, '3\n3\n1');
  });

  it('answers a user mistake with a message and exit 2, never a stack trace', async () => {
    for (const [args, message] of [
      [['nonsense'], /unknown command "nonsense"/],
      [['rendezvous', '--num-ps', 'two'], /--num-ps="two" is not an integer/],
      [['rendezvous', '--rendezvous-timeout=0'], /--rendezvous-timeout=0 is below the minimum 1/],
      [['hostlist', 'n[3-1]'], /invalid hostlist "n\[3-1\]": range 3-1 runs backwards/],
      [['rendezvous', '--num-ps', '1'], /--num-ps 1 leaves no worker among 1 rank/],
    ] as const) {
      const result = await runCli([...args]);
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'stack trace');
    }
  });

  it('names a missing scheduler variable and exits 1', async () => {
    const result = await runCli(['rendezvous', '--scheduler', 'slurm'], { env: { SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'n1' }, extendEnv: false });
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /SLURM_PROCID not found in environment\. Not running inside a Slurm step\?/);
  });

  it('runs a job of one process outside any scheduler, warning that it is unauthenticated', async () => {
    const result = await runCli(['rendezvous'], { env: { PATH: process.env.PATH! }, extendEnv: false });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /rendezvous rank=0 size=1 scheduler=local launcher=none .* role=worker:0/);
    assert.match(result.stderr, /WARNING: HPCTRAIN_SECRET is not set/);
  });
});
