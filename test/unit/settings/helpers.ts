// Shared by the settings tests: a pretend host, temp stores, and a byte-exact directory snapshot.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { HostLimits } from '../../../core/settings/host-limits.ts';
import { SettingsStore } from '../../../core/settings/store.ts';
import type { SettingsStoreOptions } from '../../../core/settings/store.ts';

/** 8 cores, 24 GiB (so memory may go to 23552 MiB), 100 GiB free. */
export const HOST: HostLimits = { cores: 8, memoryMiB: 24576, freeDiskGiB: 100 };

export function withTempDir(run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-settings-'));
  try {
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A store in a temp data directory's settings/, with a clock that ticks a second per read. */
export function withStore(
  run: (store: SettingsStore, dir: string) => void,
  options: SettingsStoreOptions & { host?: HostLimits } = {},
): void {
  withTempDir((home) => {
    const dir = join(home, 'settings');
    let tick = Date.parse('2025-01-01T00:00:00Z');
    const store = SettingsStore.open(dir, options.host ?? HOST, {
      now: () => new Date((tick += 1000)),
      ...options,
    });
    run(store, dir);
  });
}

/** Every file under `dir` (relative path -> bytes, base64) and its mode, for exact comparisons. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string) => {
    for (const name of readdirSync(path).sort()) {
      const full = join(path, name);
      const stat = statSync(full);
      const key = relative(dir, full);
      if (stat.isDirectory()) {
        out[`${key}/`] = (stat.mode & 0o777).toString(8);
        walk(full);
      } else {
        out[key] = `${(stat.mode & 0o777).toString(8)} ${readFileSync(full).toString('base64')}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** All file paths under `dir`, relative. */
export function listFiles(dir: string): string[] {
  return Object.keys(snapshot(dir)).filter((k) => !k.endsWith('/'));
}

export function readJson(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'));
}
