// What this host can give the VM: the bounds the settings schema checks against. Read once by the
// supervisor and injected into the schema and the store, so tests can pretend to be any host.
import { existsSync, statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';

export interface HostLimits {
  /** Logical CPUs the host has. */
  cores: number;
  /** Total host memory in MiB. */
  memoryMiB: number;
  /** Free space (for an unprivileged user) on the filesystem holding the data directory, in GiB. */
  freeDiskGiB: number;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export function readHostLimits(dataDir: string): HostLimits {
  const fs = statfsSync(existingAncestor(dataDir));
  return {
    cores: availableParallelism(),
    memoryMiB: Math.floor(totalmem() / MiB),
    freeDiskGiB: Math.floor((fs.bavail * fs.bsize) / GiB),
  };
}

/** The data directory may not exist yet (first start): measure the filesystem it will live on. */
function existingAncestor(path: string): string {
  let dir = resolve(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
