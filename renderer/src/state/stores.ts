// The renderer's state, one small zustand store per concern. Vanilla stores (no React here) so the
// logic that feeds them runs in Node tests; components read them through zustand's useStore.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { SettingsCommit, SettingsView, VmStats, VmStatus } from '../../../core/api/types.ts';
import type { LinkInfo } from '../api/connection.ts';
import type { ProgressMap } from './vm-reducers.ts';

export type VmAction = 'start' | 'stop' | 'restart' | 'reset';

export interface ActionFailure {
  action: VmAction;
  message: string;
  serialTail?: string;
}

export interface VmStore {
  status: VmStatus | null;
  progress: ProgressMap;
  /** The lifecycle call in flight, so its buttons wait for it. */
  action: VmAction | null;
  /** The last lifecycle call's failure, until the next call. */
  failure: ActionFailure | null;
}

export interface SettingsStore {
  view: SettingsView | null;
  /** Newest first, as settings.history returns it. */
  history: SettingsCommit[];
}

export interface StatsStore {
  /** The last STATS_CAPACITY samples of this run of the VM, oldest first. */
  samples: VmStats[];
}

export interface SerialStore {
  text: string;
  path: string | null;
  loaded: boolean;
}

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
}

export interface NoticesStore {
  notices: Notice[];
}

export interface LinkStore {
  link: LinkInfo;
}

export interface Stores {
  vm: StoreApi<VmStore>;
  settings: StoreApi<SettingsStore>;
  stats: StoreApi<StatsStore>;
  serial: StoreApi<SerialStore>;
  notices: StoreApi<NoticesStore>;
  link: StoreApi<LinkStore>;
}

/** Two minutes of samples at one per 2 s. */
export const STATS_CAPACITY = 60;
/** About 5000 lines of serial log: plenty to read a boot, bounded for a VM up for weeks. */
export const SERIAL_CAP_CHARS = 512 * 1024;

export function createStores(): Stores {
  return {
    vm: createStore<VmStore>()(() => ({ status: null, progress: {}, action: null, failure: null })),
    settings: createStore<SettingsStore>()(() => ({ view: null, history: [] })),
    stats: createStore<StatsStore>()(() => ({ samples: [] })),
    serial: createStore<SerialStore>()(() => ({ text: '', path: null, loaded: false })),
    notices: createStore<NoticesStore>()(() => ({ notices: [] })),
    link: createStore<LinkStore>()(() => ({ link: { state: 'connecting' } })),
  };
}

let nextNoticeId = 1;

export function notify(stores: Stores, kind: Notice['kind'], text: string): number {
  const id = nextNoticeId++;
  stores.notices.setState((s) => ({ notices: [...s.notices, { id, kind, text }].slice(-3) }));
  return id;
}

export function dismissNotice(stores: Stores, id: number): void {
  stores.notices.setState((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
}
