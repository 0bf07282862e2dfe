// The CLI's key=value form: friendly names, numbers only where numbers belong, clear errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAssignment, parseAssignments } from '../../../core/settings/schema.ts';

test('friendly keys map to the fields', () => {
  assert.deepEqual(parseAssignment('cpus=4'), { ok: true, field: 'cpus', patch: { cpus: 4 } });
  assert.deepEqual(parseAssignment('memory=4096'), {
    ok: true,
    field: 'memoryMiB',
    patch: { memoryMiB: 4096 },
  });
  assert.deepEqual(parseAssignment('disk=128'), {
    ok: true,
    field: 'diskGiB',
    patch: { diskGiB: 128 },
  });
  assert.deepEqual(parseAssignment('storage-driver=btrfs'), {
    ok: true,
    field: 'storageDriver',
    patch: { storageDriver: 'btrfs' },
  });
});

test('the field names themselves and spaces around = are accepted', () => {
  assert.deepEqual(parseAssignment('memoryMiB=2048').ok, true);
  assert.deepEqual(parseAssignment(' disk = 70 '), {
    ok: true,
    field: 'diskGiB',
    patch: { diskGiB: 70 },
  });
});

test('bounds are not checked here: validation knows the host', () => {
  assert.deepEqual(parseAssignment('memory=100'), {
    ok: true,
    field: 'memoryMiB',
    patch: { memoryMiB: 100 },
  });
  assert.deepEqual(parseAssignment('storage-driver=zfs').ok, true);
});

test('unknown keys, missing values and non-numbers say what is expected', () => {
  assert.deepEqual(parseAssignment('swap=1'), {
    ok: false,
    error: {
      field: 'swap',
      message: 'unknown setting "swap"; use one of cpus, memory, disk, storage-driver',
    },
  });
  assert.deepEqual(parseAssignment('memory'), {
    ok: false,
    error: { field: 'memory', message: 'expected key=value, e.g. memory=4096 (got "memory")' },
  });
  assert.deepEqual(parseAssignment('memory='), {
    ok: false,
    error: { field: 'memoryMiB', message: 'memory needs a value, e.g. memory=4096' },
  });
  assert.deepEqual(parseAssignment('memory=4g'), {
    ok: false,
    error: { field: 'memoryMiB', message: 'memory must be a whole number of MiB (got "4g")' },
  });
  assert.deepEqual(parseAssignment('disk=1.5'), {
    ok: false,
    error: { field: 'diskGiB', message: 'disk must be a whole number of GiB (got "1.5")' },
  });
  assert.deepEqual(parseAssignment('cpus=-1'), {
    ok: false,
    error: { field: 'cpus', message: 'cpus must be a whole number (got "-1")' },
  });
  assert.equal(parseAssignment('Memory=4096').ok, false);
});

test('several assignments make one patch; a key given twice is an error', () => {
  assert.deepEqual(parseAssignments(['cpus=4', 'memory=4096']), {
    ok: true,
    patch: { cpus: 4, memoryMiB: 4096 },
  });
  assert.deepEqual(parseAssignments(['memory=4096', 'memoryMiB=2048', 'x=1']), {
    ok: false,
    errors: [
      { field: 'memoryMiB', message: 'memory is given more than once' },
      { field: 'x', message: 'unknown setting "x"; use one of cpus, memory, disk, storage-driver' },
    ],
  });
});
