import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { compressHostlist, expandHostlist, expandTasksPerNode, HostlistError } from '../../src/env/hostlist.js';

interface CorpusEntry {
  expression: string;
  hosts: string[];
  /**
   * 'same': `scontrol show hostnames` gives exactly `hosts`.
   * 'extension': hpctrain accepts text after the last bracket group (`n[1-3]-ib`); Slurm's
   * parser rejects it ("Invalid hostlist"), so scontrol must reject it or, if a later Slurm
   * accepts it, agree with us.
   */
  slurm: 'same' | 'extension';
}

const range = (prefix: string, from: number, to: number, width: number, suffix = ''): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${String(from + i).padStart(width, '0')}${suffix}`);

const CORPUS: CorpusEntry[] = [
  // zero padding kept
  { expression: 'nid[00001-00004,00010]', hosts: ['nid00001', 'nid00002', 'nid00003', 'nid00004', 'nid00010'], slurm: 'same' },
  { expression: 'n[007]', hosts: ['n007'], slurm: 'same' },
  { expression: 'node001', hosts: ['node001'], slurm: 'same' },
  { expression: 'n[1,01,001]', hosts: ['n1', 'n01', 'n001'], slurm: 'same' },
  // the width of a range is the width of its lower bound
  { expression: 'n[8-10]', hosts: ['n8', 'n9', 'n10'], slurm: 'same' },
  { expression: 'n[08-10]', hosts: ['n08', 'n09', 'n10'], slurm: 'same' },
  { expression: 'n[008-10]', hosts: ['n008', 'n009', 'n010'], slurm: 'same' },
  { expression: 'n[00001-3]', hosts: ['n00001', 'n00002', 'n00003'], slurm: 'same' },
  { expression: 'n[1-010]', hosts: ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10'], slurm: 'same' },
  { expression: 'n[9-11]', hosts: ['n9', 'n10', 'n11'], slurm: 'same' },
  { expression: 'n[099-101]', hosts: ['n099', 'n100', 'n101'], slurm: 'same' },
  { expression: 'n[999-1001]', hosts: ['n999', 'n1000', 'n1001'], slurm: 'same' },
  // several bracket groups: leftmost varies slowest
  {
    expression: 'rack[1-2]-node[01-03]',
    hosts: ['rack1-node01', 'rack1-node02', 'rack1-node03', 'rack2-node01', 'rack2-node02', 'rack2-node03'],
    slurm: 'same',
  },
  { expression: 'n[1-2][3-4]', hosts: ['n13', 'n14', 'n23', 'n24'], slurm: 'same' },
  { expression: 'gpu[1-2]-[3-4]', hosts: ['gpu1-3', 'gpu1-4', 'gpu2-3', 'gpu2-4'], slurm: 'same' },
  { expression: 'rack[01-02]n[1-2]', hosts: ['rack01n1', 'rack01n2', 'rack02n1', 'rack02n2'], slurm: 'same' },
  {
    expression: 'c[1-2]-n[1-2],login[1-2]',
    hosts: ['c1-n1', 'c1-n2', 'c2-n1', 'c2-n2', 'login1', 'login2'],
    slurm: 'same',
  },
  // commas inside and outside brackets
  { expression: 'n[1-2],m[3-4]', hosts: ['n1', 'n2', 'm3', 'm4'], slurm: 'same' },
  { expression: 'n[10-12,1-2]', hosts: ['n10', 'n11', 'n12', 'n1', 'n2'], slurm: 'same' },
  { expression: 'n[3,1,2]', hosts: ['n3', 'n1', 'n2'], slurm: 'same' },
  {
    expression: 'nid[00001-00003],login1,nid00010',
    hosts: ['nid00001', 'nid00002', 'nid00003', 'login1', 'nid00010'],
    slurm: 'same',
  },
  { expression: 'n1,,n2', hosts: ['n1', 'n2'], slurm: 'same' },
  { expression: ',a,', hosts: ['a'], slurm: 'same' },
  // single-element brackets
  { expression: 'n[5]', hosts: ['n5'], slurm: 'same' },
  { expression: 'n[0]', hosts: ['n0'], slurm: 'same' },
  { expression: 'n[0-0]', hosts: ['n0'], slurm: 'same' },
  { expression: '[1-3]', hosts: ['1', '2', '3'], slurm: 'same' },
  { expression: 'n1[1-2]', hosts: ['n11', 'n12'], slurm: 'same' },
  // plain names, dots and dashes
  { expression: 'login1', hosts: ['login1'], slurm: 'same' },
  { expression: 'localhost', hosts: ['localhost'], slurm: 'same' },
  {
    expression: 'node-1.example.com,node-2.example.com',
    hosts: ['node-1.example.com', 'node-2.example.com'],
    slurm: 'same',
  },
  { expression: 'cn-[1-3]', hosts: ['cn-1', 'cn-2', 'cn-3'], slurm: 'same' },
  { expression: 'a.b[1-2]', hosts: ['a.b1', 'a.b2'], slurm: 'same' },
  { expression: 'a-1,a-2', hosts: ['a-1', 'a-2'], slurm: 'same' },
  // duplicates kept, in order
  { expression: 'a,a', hosts: ['a', 'a'], slurm: 'same' },
  { expression: 'x1,x1,x1', hosts: ['x1', 'x1', 'x1'], slurm: 'same' },
  { expression: 'n[1-2],n[1-2]', hosts: ['n1', 'n2', 'n1', 'n2'], slurm: 'same' },
  { expression: 'n[1-3,2-4]', hosts: ['n1', 'n2', 'n3', 'n2', 'n3', 'n4'], slurm: 'same' },
  // whitespace separates like a comma
  { expression: 'a b', hosts: ['a', 'b'], slurm: 'same' },
  { expression: 'a\tb', hosts: ['a', 'b'], slurm: 'same' },
  { expression: 'a\nb', hosts: ['a', 'b'], slurm: 'same' },
  { expression: '  a , b  ', hosts: ['a', 'b'], slurm: 'same' },
  { expression: 'n[1-3] m[1-2]', hosts: ['n1', 'n2', 'n3', 'm1', 'm2'], slurm: 'same' },
  // big ranges
  { expression: 'n[0001-1000]', hosts: range('n', 1, 1000, 4), slurm: 'same' },
  { expression: 'nid[000000-004095]', hosts: range('nid', 0, 4095, 6), slurm: 'same' },
  // suffixes after the last bracket group: an hpctrain extension
  { expression: 'n[1-3]-ib', hosts: ['n1-ib', 'n2-ib', 'n3-ib'], slurm: 'extension' },
  { expression: 'node[1-2].cluster', hosts: ['node1.cluster', 'node2.cluster'], slurm: 'extension' },
  { expression: 'n[1-2]a,b', hosts: ['n1a', 'n2a', 'b'], slurm: 'extension' },
  {
    expression: 'rack[1-2]-node[01-02]-ib',
    hosts: ['rack1-node01-ib', 'rack1-node02-ib', 'rack2-node01-ib', 'rack2-node02-ib'],
    slurm: 'extension',
  },
];

/** Small, fast, seedable PRNG so the random lists are the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lists mixing prefixes, widths, padding, plain names, duplicates, ascending and descending runs. */
function randomHostLists(seed: number, count: number): string[][] {
  const random = mulberry32(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const prefixes = ['n', 'nid', 'gpu-', 'rack1-node', 'a.b', 'x_', 'cn-0', ''];
  const plain = ['login', 'head.cluster', 'n-ib', 'localhost', 'svc-a', 'node1.ib'];
  const lists: string[][] = [];
  for (let l = 0; l < count; l++) {
    const list: string[] = [];
    const segments = 1 + int(6);
    for (let s = 0; s < segments; s++) {
      const kind = int(6);
      if (kind === 0) {
        list.push(pick(plain));
        continue;
      }
      if (kind === 1 && list.length > 0) {
        list.push(list[int(list.length)]!); // a duplicate of an earlier name
        continue;
      }
      const prefix = pick(prefixes);
      const width = pick([1, 1, 2, 3, 5]);
      const padded = random() < 0.6;
      const start = int(kind === 5 ? 120 : 15);
      const length = 1 + int(8);
      const step = kind === 2 ? -1 : kind === 3 ? 1 + int(3) : 1; // descending, gaps, runs
      for (let i = 0; i < length; i++) {
        const n = start + i * step;
        if (n < 0) break;
        list.push(prefix + (padded ? String(n).padStart(width, '0') : String(n)));
      }
    }
    lists.push(list);
  }
  return lists;
}

const RANDOM_LISTS = randomHostLists(20240607, 300);

/** scontrol on PATH, or undefined. */
function findScontrol(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, 'scontrol'))) return join(dir, 'scontrol');
  }
  return undefined;
}

const SCONTROL = findScontrol();
const NO_SCONTROL = 'scontrol is not installed (install slurm-wlm to run this check)';

/** Skip without scontrol, except on CI, which installs slurm-wlm and must run the check. */
function requireScontrol(context: Mocha.Context): string {
  if (SCONTROL) return SCONTROL;
  if (process.env.CI === 'true') assert.fail(`${NO_SCONTROL}; CI=true, so this is a failure, not a skip`);
  console.warn(`      skipped: ${NO_SCONTROL}`);
  context.skip();
}

describe('env/hostlist', () => {
  describe('expandHostlist', () => {
    it(`has a corpus of at least 40 expressions (${CORPUS.length})`, () => {
      assert.ok(CORPUS.length >= 40);
      assert.equal(new Set(CORPUS.map((c) => c.expression)).size, CORPUS.length, 'corpus expressions are unique');
    });

    for (const { expression, hosts } of CORPUS) {
      it(`expands ${JSON.stringify(expression)}`, () => {
        assert.deepStrictEqual(expandHostlist(expression), hosts);
      });
    }

    it('expands the empty string and bare separators to no hosts', () => {
      assert.deepStrictEqual(expandHostlist(''), []);
      assert.deepStrictEqual(expandHostlist(' , ,\t'), []);
    });

    const malformed: Array<[string, string]> = [
      ['n[1-3', 'unbalanced "["'],
      ['n1-3]', 'unbalanced "]"'],
      ['a]b[', 'unbalanced "]"'],
      ['n[1-2]]', 'unbalanced "]"'],
      ['n[[1-2]]', 'must hold numbers'],
      ['n[3-1]', 'runs backwards'],
      ['n[a-b]', 'must hold numbers'],
      ['n[]', 'must hold numbers'],
      ['n[1-]', 'must hold numbers'],
      ['n[-1]', 'must hold numbers'],
      ['n[1,,2]', 'must hold numbers'],
      ['n[1-2-3]', 'must hold numbers'],
    ];
    for (const [expression, reason] of malformed) {
      it(`rejects ${JSON.stringify(expression)} with a HostlistError (${reason})`, () => {
        assert.throws(
          () => expandHostlist(expression),
          (error: unknown) => {
            assert.ok(error instanceof HostlistError, `expected HostlistError, got ${String(error)}`);
            assert.equal(error.name, 'HostlistError');
            assert.ok(error.message.includes(`"${expression}"`), `message quotes the expression: ${error.message}`);
            assert.ok(error.message.includes(reason), `message says why: ${error.message}`);
            return true;
          },
        );
      });
    }

    it('rejects a range too large to expand', () => {
      assert.throws(() => expandHostlist('n[0-99999999]'), HostlistError);
    });
  });

  describe('agreement with `scontrol show hostnames`', () => {
    let confDir: string | undefined;
    let env: NodeJS.ProcessEnv;

    before(() => {
      // A throwaway slurm.conf: scontrol only parses it, so the check needs no cluster, and a
      // missing /etc/slurm/slurm.conf cannot make scontrol retry for a minute.
      confDir = mkdtempSync(join(tmpdir(), 'hpctrain-hostlist-'));
      writeFileSync(join(confDir, 'slurm.conf'), 'ClusterName=hostlisttest\nSlurmctldHost=localhost\n');
      env = { PATH: process.env.PATH ?? '/usr/bin:/bin', SLURM_CONF: join(confDir, 'slurm.conf') };
    });

    after(() => {
      if (confDir) rmSync(confDir, { recursive: true, force: true });
    });

    /** What scontrol makes of an expression: its hosts, or `rejected` with what it printed. */
    function scontrolHostnames(scontrol: string, expression: string): { hosts: string[]; rejected: string | undefined } {
      const result = spawnSync(scontrol, ['show', 'hostnames', expression], { env, encoding: 'utf8', timeout: 20_000 });
      if (result.error) throw result.error;
      // scontrol 22.05 exits 0 for an invalid hostlist and says so on stderr.
      const rejected = result.status !== 0 || /invalid hostlist/i.test(result.stderr) ? `${result.stderr}`.trim() : undefined;
      if (result.status !== 0 && !/invalid|range/i.test(result.stderr)) {
        assert.fail(`scontrol show hostnames ${JSON.stringify(expression)} failed (status ${result.status}): ${result.stderr}`);
      }
      return { hosts: result.stdout.split('\n').filter((line) => line !== ''), rejected };
    }

    it('runs scontrol without a cluster (skipped when scontrol is not installed, fails on CI)', function () {
      const scontrol = requireScontrol(this);
      assert.deepStrictEqual(scontrolHostnames(scontrol, 'n[1-2]'), { hosts: ['n1', 'n2'], rejected: undefined });
      assert.ok(scontrolHostnames(scontrol, 'n[3-1]').rejected, 'scontrol reports an invalid hostlist');
    });

    it('gives the same hosts as scontrol for every corpus expression (skipped when scontrol is not installed, fails on CI)', function () {
      const scontrol = requireScontrol(this);
      const disagreements: string[] = [];
      for (const { expression, slurm } of CORPUS) {
        const ours = expandHostlist(expression);
        const theirs = scontrolHostnames(scontrol, expression);
        if (slurm === 'same') {
          if (theirs.rejected !== undefined) disagreements.push(`${JSON.stringify(expression)}: scontrol rejects it: ${theirs.rejected}`);
          else if (JSON.stringify(theirs.hosts) !== JSON.stringify(ours)) {
            disagreements.push(`${JSON.stringify(expression)}: scontrol ${JSON.stringify(theirs.hosts)} vs ours ${JSON.stringify(ours)}`);
          }
        } else if (theirs.rejected === undefined && JSON.stringify(theirs.hosts) !== JSON.stringify(ours)) {
          disagreements.push(`${JSON.stringify(expression)} (extension): scontrol accepts it as ${JSON.stringify(theirs.hosts)}, we expand to ${JSON.stringify(ours)}`);
        }
      }
      assert.deepStrictEqual(disagreements, []);
    });

    it('compressHostlist output means the same list to scontrol (skipped when scontrol is not installed, fails on CI)', function () {
      const scontrol = requireScontrol(this);
      const lists = [...CORPUS.filter((c) => c.slurm === 'same').map((c) => c.hosts), ...RANDOM_LISTS.slice(0, 150)];
      const disagreements: string[] = [];
      for (const hosts of lists) {
        if (hosts.length === 0) continue;
        const compressed = compressHostlist(hosts);
        const theirs = scontrolHostnames(scontrol, compressed);
        if (theirs.rejected !== undefined || JSON.stringify(theirs.hosts) !== JSON.stringify(hosts)) {
          disagreements.push(`${JSON.stringify(hosts)} -> ${JSON.stringify(compressed)} -> scontrol ${theirs.rejected ?? JSON.stringify(theirs.hosts)}`);
        }
      }
      assert.deepStrictEqual(disagreements, []);
    });
  });

  describe('expandTasksPerNode', () => {
    it('expands repeat counts in place', () => {
      assert.deepStrictEqual(expandTasksPerNode('3(x2),2,1'), [3, 3, 2, 1]);
      assert.deepStrictEqual(expandTasksPerNode('1'), [1]);
      assert.deepStrictEqual(expandTasksPerNode('2(x3)'), [2, 2, 2]);
      assert.deepStrictEqual(expandTasksPerNode('1,4(x1),16(x2)'), [1, 4, 16, 16]);
    });

    for (const bad of ['3(x)', 'x', '', '3(x0)', '3x2', '-1', '2,,1', '3(2)']) {
      it(`rejects ${JSON.stringify(bad)} with a HostlistError`, () => {
        assert.throws(
          () => expandTasksPerNode(bad),
          (error: unknown) => error instanceof HostlistError && error.message.includes(`"${bad}"`),
        );
      });
    }
  });

  describe('compressHostlist', () => {
    it('writes ranges with the padding of their names', () => {
      assert.equal(compressHostlist(['nid00001', 'nid00002', 'nid00003', 'nid00010']), 'nid[00001-00003,00010]');
      assert.equal(compressHostlist(['n8', 'n9', 'n10']), 'n[8-10]');
      assert.equal(compressHostlist(['n08', 'n09', 'n10']), 'n[08-10]');
      assert.equal(compressHostlist(['n1', 'n2', 'n3', 'n5', 'n7', 'n8']), 'n[1-3,5,7-8]');
    });

    it('keeps plain names, singletons, duplicates and descending runs as they are', () => {
      assert.equal(compressHostlist(['login1']), 'login1');
      assert.equal(compressHostlist(['login', 'n1', 'n2', 'head.cluster']), 'login,n[1-2],head.cluster');
      assert.equal(compressHostlist(['a', 'a']), 'a,a');
      assert.equal(compressHostlist(['n1', 'n1', 'n2']), 'n1,n[1-2]');
      assert.equal(compressHostlist(['n3', 'n2', 'n1']), 'n3,n2,n1');
      assert.equal(compressHostlist(['n1', 'n01', 'm1']), 'n1,n01,m1');
      assert.equal(compressHostlist([]), '');
    });

    it('round-trips every corpus expansion', () => {
      for (const { expression, hosts } of CORPUS) {
        const compressed = compressHostlist(hosts);
        assert.deepStrictEqual(expandHostlist(compressed), hosts, `${expression} -> ${compressed}`);
      }
    });

    it(`round-trips ${RANDOM_LISTS.length} seeded random lists`, () => {
      assert.ok(RANDOM_LISTS.some((l) => l.length > 10), 'the generator makes long lists');
      assert.ok(RANDOM_LISTS.some((l) => new Set(l).size < l.length), 'the generator makes duplicates');
      for (const hosts of RANDOM_LISTS) {
        const compressed = compressHostlist(hosts);
        assert.deepStrictEqual(expandHostlist(compressed), hosts, `${JSON.stringify(hosts)} -> ${compressed}`);
      }
    });

    it('compresses a long consecutive run into one range', () => {
      const hosts = range('nid', 1, 1000, 5);
      assert.equal(compressHostlist(hosts), 'nid[00001-01000]');
    });

    it('round-trips numbers too large to be exact as JavaScript numbers', () => {
      const hosts = ['n12345678901234567890', 'n12345678901234567891', 'n9007199254740993'];
      assert.deepStrictEqual(expandHostlist(compressHostlist(hosts)), hosts);
    });

    for (const bad of ['n[1]', 'a,b', 'a b', '', 'a\tb', 'n]', 'n[']) {
      it(`rejects the host name ${JSON.stringify(bad)}`, () => {
        assert.throws(() => compressHostlist(['ok1', bad]), HostlistError);
      });
    }
  });
});
