import assert from 'node:assert/strict';
import { formatDuration, Progress } from '../../src/metrics/progress.js';

/** A clock the test moves by hand, in milliseconds. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000_000;
  return { now: () => time, advance: (ms) => { time += ms; } };
}

describe('progress', () => {
  it('formats durations in two units at most', () => {
    const cases: [number, string][] = [
      [0, '0s'], [0.4, '0s'], [45, '45s'], [59.6, '1m00s'], [250, '4m10s'], [305, '5m05s'], [3599, '59m59s'],
      [3600, '1h00m'], [2 * 3600 + 3 * 60 + 59, '2h03m'], [86399, '23h59m'], [86400, '1d00h'], [3 * 86400 + 4 * 3600 + 59 * 60, '3d04h'],
      [-3, '0s'], [NaN, '--'], [Infinity, '--'],
    ];
    for (const [seconds, text] of cases) assert.equal(formatDuration(seconds), text, `${seconds} s`);
  });

  it('has no rate nor ETA before two steps, since the first one is warm-up', () => {
    const clock = manualClock();
    const progress = new Progress({ totalSteps: 1000, now: clock.now });
    assert.equal(progress.line(), 'step 0/1000 0% -- img/s ETA --');
    clock.advance(9000);
    progress.update(1, 32);
    assert.equal(progress.line(), 'step 1/1000 0% -- img/s ETA --');
  });

  it('measures the rate over a moving window of steps and gives the ETA from it', () => {
    const clock = manualClock();
    const progress = new Progress({ totalSteps: 1000, windowSteps: 4, now: clock.now });
    clock.advance(9000);
    progress.update(1, 32);
    for (let step = 2; step <= 5; step++) {
      clock.advance(1000);
      progress.update(step, 32);
    }
    // 4 steps of 32 images in 4 s; 995 steps left at 1 step/s.
    assert.equal(progress.line(), 'step 5/1000 0% 32.0 img/s ETA 16m35s');
    for (let step = 6; step <= 120; step++) {
      clock.advance(step <= 116 ? 1000 : step === 117 ? 400 : 200);
      progress.update(step, 32);
    }
    // The window holds the last 4 steps, of 400, 200, 200 and 200 ms: 128 img/s, 880 steps at 4 steps/s.
    assert.equal(progress.line(), 'step 120/1000 12% 128.0 img/s ETA 3m40s');
  });

  it('counts from startStep after a resume', () => {
    const clock = manualClock();
    const progress = new Progress({ totalSteps: 1000, startStep: 500, now: clock.now });
    assert.equal(progress.line(), 'step 500/1000 50% -- img/s ETA --');
    clock.advance(5000);
    progress.update(501, 64);
    clock.advance(500);
    progress.update(502, 64);
    assert.equal(progress.line(), 'step 502/1000 50% 128.0 img/s ETA 4m09s');
  });

  it('shows 100% and no time left only at the end', () => {
    const clock = manualClock();
    const progress = new Progress({ totalSteps: 200, now: clock.now });
    for (let step = 1; step <= 199; step++) {
      clock.advance(2000);
      progress.update(step, 10);
    }
    assert.equal(progress.line(), 'step 199/200 99% 5.0 img/s ETA 2s');
    clock.advance(2000);
    progress.update(200, 10);
    assert.equal(progress.line(), 'step 200/200 100% 5.0 img/s ETA 0s');
    assert.match(progress.bar(12), /^\[##########\] step 200\/200 100%/);
  });

  it('draws a bar of exactly the width asked for, and pads over a longer earlier rendering', () => {
    const clock = manualClock();
    const progress = new Progress({ totalSteps: 40, startStep: 10, now: clock.now });
    for (const width of [2, 3, 22, 81]) {
      const bar = progress.bar(width).split(' ')[0]!;
      assert.equal(bar.length, width, `width ${width}: ${bar}`);
      assert.equal(bar.replace(/[^#]/g, '').length, Math.floor(((width - 2) * 10) / 40), `a quarter filled at width ${width}`);
    }
    assert.equal(progress.bar(22), `[#####...............] ${progress.line()}`.padEnd(progress.bar(81).length));
    assert.equal(progress.bar(1), progress.line().padEnd(progress.bar(81).length), 'no room for a bar');
  });

  it('refuses a run of no steps or a start beyond its end', () => {
    assert.throws(() => new Progress({ totalSteps: 0 }), /totalSteps must be a positive integer, not 0/);
    assert.throws(() => new Progress({ totalSteps: 10, startStep: 11 }), /startStep .* not 11/);
    assert.throws(() => new Progress({ totalSteps: 10, windowSteps: 0 }), /windowSteps/);
  });
});
