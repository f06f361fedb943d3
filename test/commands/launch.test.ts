import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { getFreePortBlock } from '../helpers/ports.js';
import { parseRankLines, parseSpecDocument, runCli } from '../helpers/cli.js';

describe('hpctrain launch (real processes)', function () {
  this.timeout(90_000);

  it('starts N ranks that agree on one cluster spec, output prefixed by rank', async () => {
    const result = await runCli(['launch', '-n', '3', '--', 'rendezvous', '--num-ps', '1']);
    assert.equal(result.exitCode, 0, result.stderr);
    const lines = parseRankLines(result.stdout);
    assert.deepEqual(lines.map((l) => l.rank).sort(), [0, 1, 2]);
    for (const line of result.stdout.split('\n').filter((l) => l.includes('rendezvous rank='))) {
      assert.match(line, /^\[rank (\d)\] rendezvous rank=\1 size=3 scheduler=local launcher=hpctrain-launch /);
    }
    const document = parseSpecDocument(result.stdout);
    assert.equal(document.size, 3);
    assert.equal(document.cluster.ps.length, 1);
    assert.equal(document.cluster.worker.length, 2);
    const digest = createHash('sha256').update(JSON.stringify(document.cluster)).digest('hex').slice(0, 16);
    assert.deepEqual(new Set(lines.map((l) => l.fields.spec_sha256)), new Set([digest]));
    assert.deepEqual(lines.find((l) => l.rank === 0)!.fields.role, 'ps:0');
    assert.doesNotMatch(result.stderr, /WARNING: HPCTRAIN_SECRET is not set/);
  });

  it('stops the other ranks when one fails, and exits with its status', async () => {
    const port = await getFreePortBlock(4);
    // Rank 2's service port is taken, so rank 2 fails at once while ranks 0 and 1 wait for it.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ port: port + 3, host: '0.0.0.0' }, resolve));
    try {
      const result = await runCli(['launch', '-n', '3', '--port', String(port), '--', 'rendezvous', '--rendezvous-timeout', '600']);
      assert.equal(result.exitCode, 1, result.stderr);
      assert.match(result.stderr, /\[rank 2\] hpctrain rendezvous: error: port \d+ \(service port of rank 2\) is already in use/);
      assert.match(result.stderr, /hpctrain launch: rank 2 exited with status 1; stopping the other ranks/);
      assert.equal(parseRankLines(result.stdout).length, 0);
    } finally {
      blocker.close();
    }
  });

  it('forwards SIGTERM to the ranks and exits 143', async () => {
    // Both ranks read a Slurm step in which they are rank 1 of 3, so they wait for a rank 0 that never comes.
    const subprocess = runCli(['launch', '-n', '2', '--', 'rendezvous', '--rendezvous-timeout', '600', '--scheduler', 'slurm'], {
      env: { SLURM_JOB_ID: '77', SLURM_PROCID: '1', SLURM_NTASKS: '3', SLURM_JOB_NODELIST: 'localhost', SLURM_TASKS_PER_NODE: '3' },
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    subprocess.kill('SIGTERM');
    const result = await subprocess;
    assert.equal(result.exitCode, 143, result.stderr);
    assert.match(result.stderr, /hpctrain launch: got SIGTERM, passing it on to 2 rank\(s\)/);
  });

  it('advertises the address of the interface --iface names, and refuses one that does not exist', async () => {
    // Another interface than loopback where there is one, so the address differs from the default.
    const [iface, address] = Object.entries(networkInterfaces())
      .map(([name, entries]) => [name, entries?.find((e) => e.family === 'IPv4')?.address] as const)
      .sort(([a], [b]) => Number(a === 'lo') - Number(b === 'lo'))
      .find(([, ipv4]) => ipv4 !== undefined)!;
    const result = await runCli(['launch', '-n', '2', '--', 'rendezvous', '--iface', iface]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.deepEqual(parseRankLines(result.stdout).map((l) => l.fields.address), [address, address]);
    const wrong = await runCli(['launch', '-n', '2', '--', 'rendezvous', '--iface', 'ib9']);
    assert.equal(wrong.exitCode, 2);
    assert.match(wrong.stderr, /--iface "ib9" is not a network interface of this node \(it has: .*\blo\b/);
  });

  it('refuses a command that is not an hpctrain command', async () => {
    const result = await runCli(['launch', '-n', '2', '--', 'bash', '-c', 'true']);
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /launch runs an hpctrain command \(rendezvous, .*hostlist.*\), not "bash"/);
  });
});
