// How numbers and settings read on screen: binary units (the VM's memory and disk are set in MiB
// and GiB), short durations, the settings' field names as the form labels them.
import type { PublishedPortInfo, SettingsField } from '../../core/api/types.ts';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '–';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatMiB(mib: number): string {
  return formatBytes(mib * 1024 * 1024);
}

/** "45s", "12m 05s", "3h 04m", "2d 03h": the two largest units are enough for an uptime. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${two(hours)}h`;
  if (hours > 0) return `${hours}h ${two(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${two(seconds)}s`;
  return `${seconds}s`;
}

export const FIELD_LABELS: Record<SettingsField, string> = {
  cpus: 'CPUs',
  memoryMiB: 'Memory',
  diskGiB: 'Disk',
  storageDriver: 'Storage driver',
};

export function formatSettingValue(field: SettingsField, value: unknown): string {
  if (field === 'memoryMiB' && typeof value === 'number') return `${value} MiB`;
  if (field === 'diskGiB' && typeof value === 'number') return `${value} GiB`;
  return String(value);
}

/** The fields as words inside a sentence. */
const FIELD_WORDS: Record<SettingsField, string> = {
  cpus: 'CPUs',
  memoryMiB: 'memory',
  diskGiB: 'disk size',
  storageDriver: 'storage driver',
};

/** "CPUs and memory", "CPUs, memory and disk size": for sentences about pending changes. */
export function listFields(fields: readonly SettingsField[]): string {
  const names = fields.map((f) => FIELD_WORDS[f]);
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** Where a published port answers on this machine (loopback only: see core/guest/published-ports.ts). */
export function publishedPortUrl(port: Pick<PublishedPortInfo, 'port'>): string {
  return `http://127.0.0.1:${port.port}/`;
}

/** "8080 → 80/tcp": the host's port, then the container's. */
export function formatPortMapping(port: Pick<PublishedPortInfo, 'port' | 'privatePort'>): string {
  return `${port.port} → ${port.privatePort}/tcp`;
}
