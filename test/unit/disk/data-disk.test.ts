// The data disk: sparse on creation, grow only, never silently replaced.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataDisk, DataDiskError, GiB } from '../../../core/disk/data-disk.ts';

function withDisk(run: (disk: DataDisk) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-disk-'));
  try {
    run(new DataDisk(join(dir, 'disks/data.img')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a new disk has the asked size, uses almost no space, and is private', () =>
  withDisk((disk) => {
    const info = disk.create(64 * GiB);
    assert.equal(info.sizeBytes, 64 * GiB);
    assert.ok(info.allocatedBytes < 1024 * 1024, `allocated ${info.allocatedBytes} bytes`);
    assert.equal(statSync(disk.path).mode & 0o777, 0o600);
  }));

test('an existing disk is never replaced, shrinking is refused, growing keeps it', () =>
  withDisk((disk) => {
    disk.create(2 * GiB);
    assert.throws(
      () => disk.create(2 * GiB),
      (e: unknown) => e instanceof DataDiskError && /already exists/.test(e.message),
    );
    assert.throws(() => disk.grow(1 * GiB), /can only grow/);
    assert.equal(disk.info().sizeBytes, 2 * GiB);
    assert.equal(disk.grow(3 * GiB).sizeBytes, 3 * GiB);
  }));

test('sizes must be whole MiB and at least 1 GiB', () =>
  withDisk((disk) => {
    assert.throws(() => disk.create(100), /at least 1 GiB/);
    assert.throws(() => disk.create(GiB + 1), /whole number of MiB/);
    assert.equal(disk.exists(), false);
  }));
