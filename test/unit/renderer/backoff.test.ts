// Reconnect delays (renderer/src/api/backoff.ts): doubling from the first delay, capped, jitter
// only ever shortening a delay and by at most its share.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BACKOFF, backoffDelay } from '../../../renderer/src/api/backoff.ts';

const noJitter = () => 0;

test('delays double from the initial one up to the cap', () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 10, 50].map((n) =>
    backoffDelay(n, DEFAULT_BACKOFF, noJitter),
  );
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
});

test('jitter takes at most its share off a delay', () => {
  for (const r of [0, 0.25, 0.5, 0.999]) {
    const delay = backoffDelay(3, DEFAULT_BACKOFF, () => r);
    assert.ok(delay <= 4000 && delay >= 4000 * (1 - DEFAULT_BACKOFF.jitter), `${r}: ${delay}`);
  }
});

test('odd attempt numbers are treated as the first retry, never as a negative power', () => {
  assert.equal(backoffDelay(-3, DEFAULT_BACKOFF, noJitter), 500);
  assert.equal(backoffDelay(1.7, DEFAULT_BACKOFF, noJitter), 1000);
});

test('custom options are honoured', () => {
  const options = { initialMs: 100, maxMs: 250, factor: 3, jitter: 0 };
  assert.deepEqual(
    [0, 1, 2].map((n) => backoffDelay(n, options)),
    [100, 250, 250],
  );
});
