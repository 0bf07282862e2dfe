// Stats sampling (renderer/src/state/stats-poller.ts): every 2 s while running only, one request
// at a time, a new chart for a new boot, the same chart across a reconnect.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STATS_INTERVAL_MS, startStatsPoller } from '../../../renderer/src/state/stats-poller.ts';
import { createStores } from '../../../renderer/src/state/stores.ts';
import { FakeApi, settle } from './fake-api.ts';
import { stats, status } from './fixtures.ts';

function setup() {
  const api = new FakeApi();
  const stores = createStores();
  const intervals = new Map<number, { run: () => void; ms: number }>();
  let next = 1;
  const stop = startStatsPoller(api, stores, {
    setInterval: (run, ms) => {
      intervals.set(next, { run, ms });
      return next++;
    },
    clearInterval: (handle) => intervals.delete(handle as number),
  });
  const tick = () => [...intervals.values()].forEach((i) => i.run());
  return { api, stores, intervals, tick, stop };
}

test('no sampling while stopped; sampling at once and every 2 s while running', async () => {
  const { api, stores, intervals, tick } = setup();
  let at = 0;
  api.handle('stats', () => stats(++at));
  assert.equal(intervals.size, 0);
  stores.vm.setState({ status: status({ state: 'running' }) });
  assert.equal(intervals.size, 1);
  assert.equal([...intervals.values()][0]!.ms, STATS_INTERVAL_MS);
  await settle();
  tick();
  await settle();
  assert.deepEqual(
    stores.stats.getState().samples.map((s) => s.at),
    [1, 2],
  );
  stores.vm.setState({ status: status({ state: 'stopping' }) });
  assert.equal(intervals.size, 0);
});

test('a slow answer is not stacked on by further ticks', async () => {
  const { api, stores, tick } = setup();
  stores.vm.setState({ status: status({ state: 'running' }) }); // stats never answers
  tick();
  tick();
  assert.equal(api.callsOf('stats').length, 1);
});

test('a new boot starts a new chart; a status refresh while running keeps it', async () => {
  const { api, stores } = setup();
  api.handle('stats', () => stats(1));
  stores.vm.setState({ status: status({ state: 'running', since: 1 }) });
  await settle();
  assert.equal(stores.stats.getState().samples.length, 1);
  stores.vm.setState({ status: status({ state: 'running', since: 1, vmmPid: 3 }) });
  assert.equal(stores.stats.getState().samples.length, 1);
  stores.vm.setState({ status: status({ state: 'stopped', since: 2 }) });
  stores.vm.setState({ status: status({ state: 'running', since: 3 }) });
  assert.equal(stores.stats.getState().samples.length, 0);
});

test('a failed sample is skipped quietly', async () => {
  const { api, stores } = setup();
  api.handle('stats', () => {
    throw new Error('wrong state');
  });
  stores.vm.setState({ status: status({ state: 'running' }) });
  await settle();
  assert.equal(stores.stats.getState().samples.length, 0);
  assert.equal(stores.notices.getState().notices.length, 0);
});

test('stopping the poller clears its interval', () => {
  const { stores, intervals, stop } = setup();
  stores.vm.setState({ status: status({ state: 'running' }) });
  stop();
  assert.equal(intervals.size, 0);
});
