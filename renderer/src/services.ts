// What every component may reach: the API connection, the stores and the actions, handed down
// through one React context (made once in main.tsx), with a hook per store.
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { Connection } from './api/connection.ts';
import type { TransportKind } from './api/transport.ts';
import type { Actions } from './state/actions.ts';
import type {
  LinkStore,
  NoticesStore,
  SerialStore,
  SettingsStore,
  StatsStore,
  Stores,
  VmStore,
} from './state/stores.ts';

export interface Services {
  api: Connection;
  stores: Stores;
  actions: Actions;
  transport: TransportKind;
}

export const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const services = useContext(ServicesContext);
  if (!services) throw new Error('useServices outside <ServicesContext.Provider>');
  return services;
}

// Selectors must return stable values (primitives or stored objects), as zustand compares them.
export const useVm = <T>(select: (s: VmStore) => T): T => useStore(useServices().stores.vm, select);
export const useSettings = <T>(select: (s: SettingsStore) => T): T =>
  useStore(useServices().stores.settings, select);
export const useStats = <T>(select: (s: StatsStore) => T): T =>
  useStore(useServices().stores.stats, select);
export const useSerial = <T>(select: (s: SerialStore) => T): T =>
  useStore(useServices().stores.serial, select);
export const useNotices = <T>(select: (s: NoticesStore) => T): T =>
  useStore(useServices().stores.notices, select);
export const useLink = <T>(select: (s: LinkStore) => T): T =>
  useStore(useServices().stores.link, select);
