// The real host's limits: read from the OS, for a data directory that need not exist yet.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readHostLimits } from '../../../core/settings/host-limits.ts';
import { withTempDir } from './helpers.ts';

test('host limits come from the OS, measured where the data directory will be', () =>
  withTempDir((home) => {
    const limits = readHostLimits(join(home, 'not', 'yet', 'there'));
    assert.ok(Number.isInteger(limits.cores) && limits.cores >= 1, `${limits.cores} cores`);
    assert.ok(Number.isInteger(limits.memoryMiB) && limits.memoryMiB >= 64, `${limits.memoryMiB}`);
    assert.ok(Number.isInteger(limits.freeDiskGiB) && limits.freeDiskGiB >= 0);
  }));
