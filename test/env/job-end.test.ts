import assert from 'node:assert/strict';
import { parseDuration, readJobEnd } from '../../src/env/job-end.js';
import { EnvironmentError } from '../../src/errors.js';

describe('the job\'s end from the environment', () => {
  it('takes SLURM_JOB_END_TIME first, then HPCTRAIN_JOB_END, in seconds since the epoch', () => {
    assert.deepEqual(readJobEnd({ SLURM_JOB_END_TIME: '1796000000', HPCTRAIN_JOB_END: '1' }), { endsAt: 1_796_000_000_000, source: 'SLURM_JOB_END_TIME' });
    assert.deepEqual(readJobEnd({ HPCTRAIN_JOB_END: '1796000060' }), { endsAt: 1_796_000_060_000, source: 'HPCTRAIN_JOB_END' });
    assert.deepEqual(readJobEnd({ SLURM_JOB_END_TIME: '0', HPCTRAIN_JOB_END: '1796000060' })?.source, 'HPCTRAIN_JOB_END');
    assert.equal(readJobEnd({}), undefined);
    assert.throws(() => readJobEnd({ HPCTRAIN_JOB_END: 'tomorrow' }), (e: unknown) => e instanceof EnvironmentError && /HPCTRAIN_JOB_END=tomorrow/.test(e.message));
  });

  it('reads Slurm\'s and PBS\'s durations', () => {
    assert.equal(parseDuration('29:45'), 29 * 60 + 45);
    assert.equal(parseDuration('1:29:45'), 3600 + 29 * 60 + 45);
    assert.equal(parseDuration('2-03:04:05'), 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    assert.equal(parseDuration('2-03'), 2 * 86400 + 3 * 3600);
    assert.equal(parseDuration('2-03:04'), 2 * 86400 + 3 * 3600 + 4 * 60);
    assert.equal(parseDuration('30'), 30 * 60, 'a lone number is minutes, as in Slurm');
    assert.equal(parseDuration('3600', true), 3600, 'PBS_WALLTIME is seconds');
    assert.equal(parseDuration(' 01:00:00\n'), 3600);
    for (const none of ['UNLIMITED', 'NOT_SET', 'INVALID', '', '1:2:3:4']) assert.equal(parseDuration(none), undefined, none);
  });
});
