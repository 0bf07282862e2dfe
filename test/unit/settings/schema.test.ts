// The settings schema: each bound, the memory step, types, unknown fields, and the exact messages
// the user sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkStoredSettings,
  defaultSettings,
  hostLimitProblems,
  maxMemoryMiB,
  restartNeeded,
  validateSettingsChange,
} from '../../../core/settings/schema.ts';
import type { Settings } from '../../../core/settings/schema.ts';
import { HOST } from './helpers.ts';

const CURRENT: Settings = { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' };

function errorsOf(patch: unknown, current = CURRENT, host = HOST) {
  const result = validateSettingsChange(current, patch, host);
  assert.equal(result.ok, false, `expected ${JSON.stringify(patch)} to be refused`);
  return result.ok ? [] : result.errors;
}

function valueOf(patch: unknown, current = CURRENT, host = HOST): Settings {
  const result = validateSettingsChange(current, patch, host);
  assert.ok(result.ok, `expected ${JSON.stringify(patch)} to pass: ${JSON.stringify(result)}`);
  return result.value;
}

test('defaults: 2 cpus, 2048 MiB, 64 GiB, overlay2, clamped to a small host', () => {
  assert.deepEqual(defaultSettings(HOST), CURRENT);
  assert.deepEqual(defaultSettings({ cores: 1, memoryMiB: 2560, freeDiskGiB: 10 }), {
    cpus: 1,
    memoryMiB: 1536,
    diskGiB: 64,
    storageDriver: 'overlay2',
  });
  assert.equal(defaultSettings({ cores: 1, memoryMiB: 1000, freeDiskGiB: 1 }).memoryMiB, 512);
});

test('memory limit is host memory less 1 GiB, rounded down to a 256 MiB step', () => {
  assert.equal(maxMemoryMiB(HOST), 23552);
  assert.equal(maxMemoryMiB({ ...HOST, memoryMiB: 24576 + 255 }), 23552);
  assert.equal(maxMemoryMiB({ ...HOST, memoryMiB: 15_900 }), 14848);
});

test('cpus: 1 to the host cores', () => {
  assert.equal(valueOf({ cpus: 1 }).cpus, 1);
  assert.equal(valueOf({ cpus: 8 }).cpus, 8);
  assert.deepEqual(errorsOf({ cpus: 9 }), [
    { field: 'cpus', message: 'cpus must be between 1 and 8, the cores this host has (got 9)' },
  ]);
  assert.deepEqual(errorsOf({ cpus: 0 }), [
    { field: 'cpus', message: 'cpus must be between 1 and 8, the cores this host has (got 0)' },
  ]);
  assert.equal(errorsOf({ cpus: -3 })[0]?.field, 'cpus');
});

test('memory: 512 to host memory less 1 GiB, in steps of 256', () => {
  assert.equal(valueOf({ memoryMiB: 512 }).memoryMiB, 512);
  assert.equal(valueOf({ memoryMiB: 23552 }).memoryMiB, 23552);
  assert.equal(valueOf({ memoryMiB: 4096 }).memoryMiB, 4096);
  const message = (got: number) =>
    `memory must be between 512 and 23552 MiB in steps of 256 (got ${got})`;
  assert.deepEqual(errorsOf({ memoryMiB: 100 }), [{ field: 'memoryMiB', message: message(100) }]);
  assert.deepEqual(errorsOf({ memoryMiB: 256 }), [{ field: 'memoryMiB', message: message(256) }]);
  assert.deepEqual(errorsOf({ memoryMiB: 23808 }), [
    { field: 'memoryMiB', message: message(23808) },
  ]);
  assert.deepEqual(errorsOf({ memoryMiB: 4000 }), [{ field: 'memoryMiB', message: message(4000) }]);
  const tiny = { cores: 1, memoryMiB: 1200, freeDiskGiB: 10 };
  assert.match(errorsOf({ memoryMiB: 1024 }, CURRENT, tiny)[0]!.message, /this host has 1200 MiB/);
});

test('disk: grow only, within the free space', () => {
  assert.equal(valueOf({ diskGiB: 65 }).diskGiB, 65);
  assert.equal(valueOf({ diskGiB: 164 }).diskGiB, 164);
  assert.deepEqual(errorsOf({ diskGiB: 32 }), [
    { field: 'diskGiB', message: 'disk size can only grow: it is 64 GiB now (got 32)' },
  ]);
  assert.deepEqual(errorsOf({ diskGiB: 165 }), [
    {
      field: 'diskGiB',
      message:
        'disk size can grow only within the 100 GiB free on the host: it can be 64 to 164 GiB (got 165)',
    },
  ]);
  // Keeping the size is always allowed, even with a full host disk.
  assert.equal(valueOf({ diskGiB: 64 }, CURRENT, { ...HOST, freeDiskGiB: 0 }).diskGiB, 64);
});

test('storage driver: overlay2, btrfs or vfs', () => {
  for (const driver of ['overlay2', 'btrfs', 'vfs']) {
    assert.equal(valueOf({ storageDriver: driver }).storageDriver, driver);
  }
  assert.deepEqual(errorsOf({ storageDriver: 'zfs' }), [
    {
      field: 'storageDriver',
      message: 'storage driver must be one of overlay2, btrfs, vfs (got "zfs")',
    },
  ]);
  assert.equal(errorsOf({ storageDriver: 2 })[0]?.field, 'storageDriver');
});

test('wrong types name the field and what was given', () => {
  assert.deepEqual(errorsOf({ cpus: '4' }), [
    { field: 'cpus', message: 'cpus must be a whole number (got "4")' },
  ]);
  assert.deepEqual(errorsOf({ memoryMiB: 2048.5 }), [
    { field: 'memoryMiB', message: 'memory must be a whole number of MiB (got 2048.5)' },
  ]);
  assert.deepEqual(errorsOf({ diskGiB: null }), [
    { field: 'diskGiB', message: 'disk size must be a whole number of GiB (got null)' },
  ]);
  assert.deepEqual(errorsOf({ cpus: Number.NaN }), [
    { field: 'cpus', message: 'cpus must be a whole number (got NaN)' },
  ]);
  assert.deepEqual(errorsOf({ cpus: [2] }), [
    { field: 'cpus', message: 'cpus must be a whole number (got a list)' },
  ]);
});

test('unknown fields and non-objects are refused, naming the field', () => {
  assert.deepEqual(errorsOf({ swap: 1 }), [
    {
      field: 'swap',
      message: 'unknown setting "swap"; the settings are cpus, memoryMiB, diskGiB, storageDriver',
    },
  ]);
  assert.equal(errorsOf({ memory: 4096 })[0]?.field, 'memory');
  for (const patch of [null, [], 'cpus=4', 3]) {
    assert.equal(errorsOf(patch)[0]?.field, 'settings');
  }
  assert.match(errorsOf(null)[0]!.message, /must be an object of fields \(got null\)/);
});

test('every problem is reported at once, and nothing else changes', () => {
  const errors = errorsOf({ cpus: 99, memoryMiB: 1, storageDriver: 'aufs', extra: true });
  assert.deepEqual(
    errors.map((e) => e.field),
    ['cpus', 'memoryMiB', 'storageDriver', 'extra'],
  );
  assert.deepEqual(valueOf({}), CURRENT);
  assert.deepEqual(valueOf({ cpus: 4, memoryMiB: undefined }), { ...CURRENT, cpus: 4 });
  assert.deepEqual(CURRENT, { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' });
});

test('a value that is not changing is not re-checked against a host that shrank', () => {
  const big: Settings = { ...CURRENT, cpus: 8, memoryMiB: 16384 };
  const small = { cores: 4, memoryMiB: 8192, freeDiskGiB: 10 };
  assert.deepEqual(valueOf({ cpus: 8, storageDriver: 'btrfs' }, big, small), {
    ...big,
    storageDriver: 'btrfs',
  });
  assert.match(errorsOf({ cpus: 6 }, big, small)[0]!.message, /between 1 and 4/);
  assert.deepEqual(hostLimitProblems(big, small), [
    { field: 'cpus', message: 'cpus is 8 but this host has 4 cores' },
    { field: 'memoryMiB', message: 'memory is 16384 MiB but this host allows at most 7168 MiB' },
  ]);
  assert.deepEqual(hostLimitProblems(CURRENT, HOST), []);
});

test('restartNeeded lists every changed field (all need a VM restart)', () => {
  assert.deepEqual(restartNeeded(CURRENT, CURRENT), []);
  assert.deepEqual(restartNeeded(CURRENT, { ...CURRENT, diskGiB: 128 }), ['diskGiB']);
  assert.deepEqual(
    restartNeeded(CURRENT, { cpus: 4, memoryMiB: 4096, diskGiB: 65, storageDriver: 'btrfs' }),
    ['cpus', 'memoryMiB', 'diskGiB', 'storageDriver'],
  );
});

test('stored settings must be complete, typed and within host-independent bounds', () => {
  assert.deepEqual(checkStoredSettings(CURRENT), []);
  assert.deepEqual(
    checkStoredSettings({ cpus: 2, memoryMiB: 100, diskGiB: 64, storageDriver: 'overlay2', x: 1 }),
    [
      { field: 'x', message: 'unknown setting "x"' },
      {
        field: 'memoryMiB',
        message: 'memory must be at least 512 MiB in steps of 256 (got 100)',
      },
    ],
  );
  assert.deepEqual(checkStoredSettings({ cpus: 2, memoryMiB: 2048, diskGiB: 64 }), [
    { field: 'storageDriver', message: 'storage driver is missing' },
  ]);
  assert.equal(checkStoredSettings([]).length, 1);
});
