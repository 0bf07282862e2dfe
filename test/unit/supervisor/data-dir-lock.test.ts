// DataDirLock (core/supervisor/data-dir-lock.ts): one supervisor per data directory. A live owner
// is named in the error, a dead owner's lock is taken over, and release only removes our own.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DataDirLock,
  DataDirLockedError,
  LOCK_FILE,
  readOwner,
} from '../../../core/supervisor/data-dir-lock.ts';
import { exitedPid, liveProcess, runNode } from './processes.ts';

function withHome(run: (home: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const home = mkdtempSync(join(tmpdir(), 'berth-lock-'));
    try {
      await run(home);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  };
}

const lockPath = (home: string) => join(home, LOCK_FILE);

test(
  'acquire writes our pid to berth.lock (mode 0600) and leaves no other file',
  withHome((home) => {
    const lock = DataDirLock.acquire(home);
    assert.equal(lock.path, lockPath(home));
    assert.equal(readFileSync(lockPath(home), 'utf8'), `${process.pid}\n`);
    assert.equal(statSync(lockPath(home)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(home), [LOCK_FILE]);
    assert.equal(readOwner(lockPath(home)), process.pid);
    lock.release();
  }),
);

test(
  'release removes the lock file; a second release does nothing',
  withHome((home) => {
    const lock = DataDirLock.acquire(home);
    lock.release();
    assert.equal(existsSync(lockPath(home)), false);
    assert.doesNotThrow(() => lock.release());
    // The directory can be locked again afterwards.
    const again = DataDirLock.acquire(home);
    assert.equal(readOwner(lockPath(home)), process.pid);
    again.release();
    assert.deepEqual(readdirSync(home), []);
  }),
);

test(
  'a lock held by another live process is refused, naming its pid',
  withHome(async (home) => {
    const owner = await liveProcess();
    try {
      writeFileSync(lockPath(home), `${owner.pid}\n`, { mode: 0o600 });
      assert.throws(
        () => DataDirLock.acquire(home),
        (error: unknown) => {
          assert.ok(error instanceof DataDirLockedError);
          assert.equal(error.name, 'DataDirLockedError');
          assert.equal(error.ownerPid, owner.pid);
          assert.equal(error.home, home);
          assert.match(error.message, new RegExp(`\\(pid ${owner.pid}\\)`));
          assert.ok(error.message.includes(home), error.message);
          return true;
        },
      );
      // Nothing was taken or left behind: the owner's lock is as it was, no temp files.
      assert.equal(readFileSync(lockPath(home), 'utf8'), `${owner.pid}\n`);
      assert.deepEqual(readdirSync(home), [LOCK_FILE]);
    } finally {
      await owner.stop();
    }
  }),
);

test(
  'a live owner of another user (pid 1) is refused too',
  withHome((home) => {
    writeFileSync(lockPath(home), '1\n');
    assert.throws(
      () => DataDirLock.acquire(home),
      (error: unknown) => error instanceof DataDirLockedError && error.ownerPid === 1,
    );
    assert.equal(readFileSync(lockPath(home), 'utf8'), '1\n');
  }),
);

test(
  'a stale lock (its process has exited) is taken over',
  withHome((home) => {
    const dead = exitedPid();
    writeFileSync(lockPath(home), `${dead}\n`, { mode: 0o600 });
    const lock = DataDirLock.acquire(home);
    assert.equal(readOwner(lockPath(home)), process.pid);
    assert.equal(statSync(lockPath(home)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(home), [LOCK_FILE], 'no .stale or temp file is left');
    lock.release();
    assert.equal(existsSync(lockPath(home)), false);
  }),
);

test(
  'an unreadable lock (empty, torn, not a pid) is taken over',
  withHome((home) => {
    for (const content of ['', '12ab\n', 'pid=5\n', '-1\n', '\n']) {
      writeFileSync(lockPath(home), content);
      const lock = DataDirLock.acquire(home);
      assert.equal(readOwner(lockPath(home)), process.pid, JSON.stringify(content));
      lock.release();
    }
  }),
);

test(
  'release leaves a lock that is no longer ours alone',
  withHome(async (home) => {
    const other = await liveProcess();
    try {
      const lock = DataDirLock.acquire(home);
      // Someone took the directory over (e.g. after deciding we were gone).
      writeFileSync(lockPath(home), `${other.pid}\n`);
      lock.release();
      assert.equal(readFileSync(lockPath(home), 'utf8'), `${other.pid}\n`);
    } finally {
      await other.stop();
    }
  }),
);

test(
  'release of a lock file someone already removed does not throw',
  withHome((home) => {
    const lock = DataDirLock.acquire(home);
    rmSync(lockPath(home));
    assert.doesNotThrow(() => lock.release());
  }),
);

test('acquire on a directory that does not exist throws, leaving nothing', () => {
  const home = join(tmpdir(), `berth-lock-missing-${process.pid}-${Date.now()}`);
  assert.throws(() => DataDirLock.acquire(home), { code: 'ENOENT' });
  assert.equal(existsSync(home), false);
});

test(
  'another process cannot take a lock this process holds, and is told our pid',
  withHome(async (home) => {
    const lock = DataDirLock.acquire(home);
    try {
      const result = await runNode(`
        const { DataDirLock, DataDirLockedError } = await load('core/supervisor/data-dir-lock.ts');
        try {
          DataDirLock.acquire(${JSON.stringify(home)});
          console.log('acquired');
        } catch (error) {
          console.log(error instanceof DataDirLockedError ? 'locked ' + error.ownerPid : 'other ' + error);
        }
      `);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), `locked ${process.pid}`);
      assert.equal(readOwner(lockPath(home)), process.pid);
    } finally {
      lock.release();
    }
  }),
);

test(
  'a lock left by a process that exited without releasing it is taken over',
  withHome(async (home) => {
    const result = await runNode(`
      const { DataDirLock } = await load('core/supervisor/data-dir-lock.ts');
      DataDirLock.acquire(${JSON.stringify(home)});
      console.log(process.pid);
      process.exit(0); // no release: as after a crash
    `);
    assert.equal(result.code, 0, result.stderr);
    const childPid = Number(result.stdout.trim());
    assert.equal(readOwner(lockPath(home)), childPid);
    const lock = DataDirLock.acquire(home);
    assert.equal(readOwner(lockPath(home)), process.pid);
    lock.release();
  }),
);

test('readOwner: the pid in a lock file, or null', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-owner-'));
  try {
    const path = join(dir, 'lock');
    assert.equal(readOwner(path), null, 'missing file');
    for (const [content, owner] of [
      ['123\n', 123],
      ['  77  \n', 77],
      ['', null],
      ['abc', null],
      ['12 34', null],
      ['1.5', null],
    ] as const) {
      writeFileSync(path, content);
      assert.equal(readOwner(path), owner, JSON.stringify(content));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
