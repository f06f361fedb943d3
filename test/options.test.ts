import assert from 'node:assert/strict';
import { OptionsError } from '../src/errors.js';
import { formatHelp, parseCommandArgs, type CommandSpec } from '../src/options.js';

const command: CommandSpec = {
  name: 'demo',
  usage: 'hpctrain demo [options]',
  summary: 'A demo command.',
  options: [
    { name: 'port', type: 'integer', env: 'HPCTRAIN_PORT', min: 1024, max: 65000, describe: 'the port' },
    { name: 'timeout', type: 'number', env: 'HPCTRAIN_TIMEOUT', default: 120, min: 1, describe: 'seconds' },
    { name: 'scheduler', type: 'string', default: 'auto', choices: ['auto', 'slurm'], describe: 'which' },
    { name: 'nproc', alias: 'n', type: 'integer', default: 2, min: 1, describe: 'ranks' },
    { name: 'verbose', type: 'boolean', env: 'HPCTRAIN_VERBOSE', default: false, describe: 'chatty' },
  ],
};

const parse = (argv: string[], env: Record<string, string> = {}) => parseCommandArgs(command, argv, env);
const rejects = (argv: string[], pattern: RegExp, env: Record<string, string> = {}) =>
  assert.throws(() => parse(argv, env), (e: unknown) => e instanceof OptionsError && pattern.test(e.message));

describe('options', () => {
  it('takes flags first, then HPCTRAIN_* variables, then defaults', () => {
    assert.deepEqual({ ...parse([]).values }, { port: undefined, timeout: 120, scheduler: 'auto', nproc: 2, verbose: false, help: undefined });
    assert.equal(parse([], { HPCTRAIN_PORT: '25000' }).values.port, 25000);
    assert.equal(parse(['--port', '26000'], { HPCTRAIN_PORT: '25000' }).values.port, 26000);
    assert.equal(parse(['-n', '4']).values.nproc, 4);
    assert.equal(parse([], { HPCTRAIN_VERBOSE: 'yes' }).values.verbose, true);
    assert.equal(parse(['--verbose']).values.verbose, true);
    assert.equal(parse(['--timeout=2.5']).values.timeout, 2.5);
  });

  it('quotes the bad value and names where it came from', () => {
    rejects(['--port', 'abc'], /^--port="abc" is not an integer$/);
    rejects(['--port', '80'], /^--port=80 is below the minimum 1024$/);
    rejects([], /^HPCTRAIN_PORT="1e3x" is not an integer$/, { HPCTRAIN_PORT: '1e3x' });
    rejects(['--timeout', '0'], /below the minimum 1/);
    rejects(['--scheduler', 'pbs'], /^--scheduler="pbs" is not one of auto, slurm$/);
    rejects(['--nproc', '2.5'], /not an integer/);
    rejects(['--port'], /--port needs a value/);
    rejects(['--port', '2000', '--port', '3000'], /given 2 times/);
    rejects(['--prot', '3'], /unknown option "--prot" for hpctrain demo/);
  });

  it('keeps positionals, and stops at the first one when asked', () => {
    assert.deepEqual(parse(['a', '--', '--b']).positionals, ['a', '--b']);
    const launch = { ...command, stopEarly: true };
    assert.deepEqual(parseCommandArgs(launch, ['-n', '3', 'rendezvous', '--num-ps', '1'], {}).positionals, ['rendezvous', '--num-ps', '1']);
  });

  it('documents every option, its default and its variable in --help', () => {
    const help = formatHelp(command);
    for (const spec of command.options) assert.ok(help.includes(`--${spec.name}`), spec.name);
    assert.match(help, /--timeout NUMBER +seconds \(default 120; env HPCTRAIN_TIMEOUT\)/);
    assert.match(help, /-n, --nproc INTEGER/);
    assert.match(help, /--scheduler STRING +which \(one of auto\|slurm; default auto\)/);
  });
});
