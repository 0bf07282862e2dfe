// Feeds the stores from the API: after every (re)connect a fresh read of everything, then the
// events as they come. Events are applied before anything is fetched, so the UI follows at once.
import type { VmStatus } from '../../../core/api/types.ts';
import { NotConnectedError, type Api } from '../api/connection.ts';
import { appendCapped } from './bounded.ts';
import { SERIAL_CAP_CHARS, notify, type Stores } from './stores.ts';
import {
  applyEngineEvent,
  applyProgress,
  applySettingsEvent,
  applyStateEvent,
  applyStatus,
  settleProgress,
} from './vm-reducers.ts';

/** How many lines of the serial log to show when the page opens. */
export const INITIAL_LOG_LINES = 500;
export const HISTORY_LIMIT = 50;
export const FIRST_DATA_MARK = 'berth-first-data';

export function bindStores(
  api: Api,
  stores: Stores,
  mark: (name: string) => void = (name) => performance.mark(name),
): () => void {
  let marked = false;

  const report = (what: string) => (error: unknown) => {
    // While disconnected the banner says so; one notice per failed read would only be noise.
    if (error instanceof NotConnectedError) return;
    notify(stores, 'error', `Could not ${what}: ${(error as Error).message}`);
  };

  const setStatus = (status: VmStatus) => {
    stores.vm.setState((s) => ({ status: applyStatus(s.status, status) }));
    if (!marked) {
      marked = true;
      mark(FIRST_DATA_MARK);
    }
  };

  const refreshStatus = () => api.call('status').then(setStatus, report('read the VM status'));

  const refreshHistory = () =>
    api
      .call('settings.history', { limit: HISTORY_LIMIT })
      .then(
        (history) => stores.settings.setState({ history }),
        report('read the settings history'),
      );

  const loadSettings = () =>
    api
      .call('settings.get')
      .then((view) => stores.settings.setState({ view }), report('read the settings'));

  const loadLogs = () =>
    api
      .call('logs', { lines: INITIAL_LOG_LINES })
      .then(
        ({ text, path }) => stores.serial.setState({ text, path, loaded: true }),
        report('read the serial log'),
      );

  const offs = [
    api.on('state', (event) => {
      stores.vm.setState((s) => ({
        status: applyStateEvent(s.status, event),
        progress: settleProgress(s.progress, event.to),
      }));
      void refreshStatus();
      // Live serial output starts once the VM runs; the boot before it is read from the log.
      if (event.to === 'running') void loadLogs();
    }),
    api.on('progress', (event) => {
      stores.vm.setState((s) => ({ progress: applyProgress(s.progress, event) }));
    }),
    api.on('serial', (event) => {
      stores.serial.setState((s) => ({ text: appendCapped(s.text, event.text, SERIAL_CAP_CHARS) }));
    }),
    api.on('engine', (event) => {
      stores.vm.setState((s) => ({ status: applyEngineEvent(s.status, event) }));
    }),
    api.on('settings', (event) => {
      const view = applySettingsEvent(stores.settings.getState().view, event);
      if (view) stores.settings.setState({ view });
      else void loadSettings();
      stores.vm.setState((s) =>
        s.status ? { status: { ...s.status, pendingRestart: event.pendingRestart } } : {},
      );
      void refreshHistory();
    }),
    api.onConnect(() => {
      void refreshStatus();
      void loadSettings();
      void refreshHistory();
      void loadLogs();
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
