// Samples the VM's CPU, memory and disk use every 2 s while it runs, for the dashboard's charts.
// A new run of the VM starts a new chart; a reconnect to the same run keeps it.
import type { Api } from '../api/connection.ts';
import { pushSample } from './bounded.ts';
import { STATS_CAPACITY, type Stores } from './stores.ts';

export const STATS_INTERVAL_MS = 2000;

export interface Timers {
  setInterval: (run: () => void, ms: number) => unknown;
  clearInterval: (handle: unknown) => void;
}

const GLOBAL_TIMERS: Timers = {
  setInterval: (run, ms) => setInterval(run, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export function startStatsPoller(api: Api, stores: Stores, timers: Timers = GLOBAL_TIMERS) {
  let timer: unknown = null;
  let inFlight = false;

  const sample = () => {
    if (inFlight) return; // a slow guest must not pile up requests
    inFlight = true;
    api
      .call('stats')
      .then(
        (stats) =>
          stores.stats.setState((s) => ({
            samples: pushSample(s.samples, stats, STATS_CAPACITY),
          })),
        // wrongState while stopping, or a guest too busy to answer: the next tick tries again.
        () => {},
      )
      .finally(() => {
        inFlight = false;
      });
  };

  const follow = (running: boolean) => {
    if (running && timer === null) {
      sample();
      timer = timers.setInterval(sample, STATS_INTERVAL_MS);
    } else if (!running && timer !== null) {
      timers.clearInterval(timer);
      timer = null;
    }
  };

  const unsubscribe = stores.vm.subscribe((state, previous) => {
    const was = previous.status?.state;
    const now = state.status?.state;
    if (now === 'running' && was !== undefined && was !== 'running') {
      stores.stats.setState({ samples: [] }); // a new boot: the old run's samples mean nothing now
    }
    follow(now === 'running');
  });
  follow(stores.vm.getState().status?.state === 'running');

  return () => {
    unsubscribe();
    follow(false);
  };
}
