// Realistic API answers for renderer tests.
import type { EngineStatus, SettingsView, VmStats, VmStatus } from '../../../core/api/types.ts';

export function status(overrides: Partial<VmStatus> = {}): VmStatus {
  return {
    state: 'stopped',
    since: 1000,
    pendingRestart: [],
    dataDirectory: '/home/user/.local/share/berth',
    ...overrides,
  };
}

export function engine(
  publishedPorts: EngineStatus['publishedPorts'] = [],
  socket = '/home/user/.local/share/berth/run/docker.sock',
): EngineStatus {
  return { socket, context: 'berth', publishedPorts };
}

export function settingsView(overrides: Partial<SettingsView> = {}): SettingsView {
  return {
    revision: 3,
    settings: { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' },
    limits: {
      cpus: { min: 1, max: 8 },
      memoryMiB: { min: 512, max: 15104, step: 256 },
      diskGiB: { min: 64, max: 400 },
      storageDrivers: ['overlay2', 'btrfs', 'vfs'],
    },
    pendingRestart: [],
    warnings: [],
    ...overrides,
  };
}

export function stats(at: number, cpuPercent: number | null = 10): VmStats {
  return {
    at,
    cpuPercent,
    memory: { totalMiB: 2048, usedMiB: 300 },
    disk: { sizeBytes: 64 * 2 ** 30, usedBytes: 2 ** 30, allocatedBytes: 2 ** 29 },
  };
}
