// The VM's data disk: a sparse raw file (disks/data.img). Created empty and sparse, so a 64 GiB
// disk costs only the blocks the guest writes; the guest formats it on first boot (ext4) and
// mounts it at /var. Growing keeps the data; shrinking is refused (it would cut off the filesystem).
import {
  closeSync,
  openSync,
  statSync,
  ftruncateSync,
  mkdirSync,
  existsSync,
  rmSync,
} from 'node:fs';
import { dirname } from 'node:path';

export const GiB = 1024 ** 3;

export class DataDiskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDiskError';
  }
}

export interface DataDiskInfo {
  path: string;
  /** The size the guest sees. */
  sizeBytes: number;
  /** What the sparse file really uses on the host. */
  allocatedBytes: number;
}

export class DataDisk {
  constructor(readonly path: string) {}

  exists(): boolean {
    return existsSync(this.path);
  }

  info(): DataDiskInfo {
    const stat = statSync(this.path);
    return { path: this.path, sizeBytes: stat.size, allocatedBytes: stat.blocks * 512 };
  }

  /** Creates a new empty sparse disk; refuses to replace an existing one (use wipe first). */
  create(sizeBytes: number): DataDiskInfo {
    checkSize(sizeBytes);
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    let fd: number;
    try {
      fd = openSync(this.path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new DataDiskError(
          `data disk ${this.path} already exists; reset to factory to recreate it`,
        );
      }
      throw error;
    }
    try {
      ftruncateSync(fd, sizeBytes);
    } finally {
      closeSync(fd);
    }
    return this.info();
  }

  /** Grows the disk to `sizeBytes`; the guest grows its filesystem at next boot. */
  grow(sizeBytes: number): DataDiskInfo {
    checkSize(sizeBytes);
    const current = this.info().sizeBytes;
    if (sizeBytes < current) {
      throw new DataDiskError(
        `the data disk is ${current / GiB} GiB and can only grow; ${sizeBytes / GiB} GiB would lose data`,
      );
    }
    const fd = openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, sizeBytes);
    } finally {
      closeSync(fd);
    }
    return this.info();
  }

  /** Deletes the disk and everything on it (reset to factory). */
  wipe(): void {
    rmSync(this.path, { force: true });
  }
}

function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < GiB || sizeBytes % (1024 * 1024) !== 0) {
    throw new DataDiskError(
      `a data disk size must be a whole number of MiB, at least 1 GiB (got ${sizeBytes})`,
    );
  }
}
