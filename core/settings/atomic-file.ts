// Writing a file so that a reader (or a restart after a crash) sees either the old file or the
// whole new one: write a temp file beside it, fsync it, rename it over the target, fsync the
// directory so the rename itself survives a power cut.
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Temp files are dot files ending in .tmp, so no reader mistakes one for a revision or HEAD. */
const TEMP_FILE = /^\..+\.tmp$/;

export function isTempFile(name: string): boolean {
  return TEMP_FILE.test(name);
}

export interface AtomicWriteOptions {
  /** Fault injection for tests: runs after the temp file is durable and before the rename. */
  beforeRename?: (tempPath: string, path: string) => void;
}

export function writeFileAtomic(
  path: string,
  data: string,
  options: AtomicWriteOptions = {},
): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(temp, 'wx', 0o600);
    try {
      const bytes = Buffer.from(data);
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    options.beforeRename?.(temp, path);
    renameSync(temp, path);
  } catch (error) {
    // A failed write leaves nothing behind; only a crash can leave a temp file (see removeTempFiles).
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(dir);
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes temp files a crashed writer left in `dir`. Only the writer may call this (it holds the
 * supervisor's lock): a reader doing it could pull a temp file from under a live write.
 */
export function removeTempFiles(dir: string): string[] {
  const removed = readdirSync(dir).filter(isTempFile);
  for (const name of removed) rmSync(join(dir, name), { force: true });
  return removed;
}
