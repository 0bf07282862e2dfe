// One supervisor per data directory: a lock file holding the owner's pid. It is created with
// link(2), which fails if the file exists, so two supervisors starting at once cannot both win.
// A lock left by a process that is gone (crash, kill -9) is taken over, since nobody can release
// it otherwise; a live owner is named in the error so the user knows which process to look at.
import { linkSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'berth.lock';

export class DataDirLockedError extends Error {
  constructor(
    readonly home: string,
    readonly ownerPid: number,
  ) {
    super(
      `another Berth (pid ${ownerPid}) already runs the VM of ${home}; use it (berth status), ` +
        `or quit it first`,
    );
    this.name = 'DataDirLockedError';
  }
}

export class DataDirLock {
  private released = false;

  private constructor(readonly path: string) {}

  /** Takes the lock of `home` (which must exist) for this process, or throws DataDirLockedError. */
  static acquire(home: string): DataDirLock {
    const path = join(home, LOCK_FILE);
    const temp = `${path}.${process.pid}`;
    writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          linkSync(temp, path);
          return new DataDirLock(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const owner = readOwner(path);
        // Our own pid means this process already holds it (a second supervisor in-process).
        if (owner !== null && (owner === process.pid || isAlive(owner))) {
          throw new DataDirLockedError(home, owner);
        }
        // Stale (or unreadable, e.g. torn by a crash mid-write). Remove it only while holding the
        // takeover file, and only if it still names the dead owner we saw: otherwise two
        // processes taking over at once could each remove the lock the other just took.
        removeIfStill(path, owner);
      }
      throw new Error(`cannot take the lock ${path}: it keeps changing; is Berth starting twice?`);
    } finally {
      unlinkSync(temp);
    }
  }

  /** Releases the lock if this process still holds it. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (readOwner(this.path) === process.pid) unlinkSync(this.path);
  }
}

/** A takeover file older than this was left by a crash mid-takeover and is removed. */
const TAKEOVER_STALE_MS = 5_000;

/** Removes the lock at `path` if it still holds `staleOwner`, under an exclusive takeover file. */
function removeIfStill(path: string, staleOwner: number | null): void {
  const takeover = `${path}.takeover`;
  try {
    writeFileSync(takeover, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Someone else is taking over: give them a moment (or clear a crashed one's leftover).
    try {
      if (Date.now() - statSync(takeover).mtimeMs > TAKEOVER_STALE_MS) unlinkSync(takeover);
    } catch {
      // gone meanwhile
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    return;
  }
  try {
    if (readOwner(path) === staleOwner) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  } finally {
    unlinkSync(takeover);
  }
}

/** The pid in a lock file, or null when there is none or it is not a pid. */
export function readOwner(path: string): number | null {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}
