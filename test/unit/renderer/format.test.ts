// Display formats (renderer/src/format.ts) and page routes (renderer/src/routes.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatBytes,
  formatDuration,
  formatMiB,
  formatPortMapping,
  formatSettingValue,
  listFields,
  publishedPortUrl,
} from '../../../renderer/src/format.ts';
import { hashFor, pageFromHash } from '../../../renderer/src/routes.ts';

test('bytes in binary units, one decimal below 100', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(64 * 2 ** 30), '64.0 GiB');
  assert.equal(formatBytes(200 * 2 ** 20), '200 MiB');
  assert.equal(formatBytes(-1), '–');
  assert.equal(formatMiB(2048), '2.0 GiB');
});

test('durations show their two largest units', () => {
  assert.equal(formatDuration(999), '0s');
  assert.equal(formatDuration(45_000), '45s');
  assert.equal(formatDuration(125_000), '2m 05s');
  assert.equal(formatDuration(3_723_000), '1h 02m');
  assert.equal(formatDuration(2 * 86_400_000 + 3 * 3_600_000), '2d 03h');
  assert.equal(formatDuration(-5), '0s');
});

test('settings values and field lists read as sentences', () => {
  assert.equal(formatSettingValue('memoryMiB', 2048), '2048 MiB');
  assert.equal(formatSettingValue('diskGiB', 64), '64 GiB');
  assert.equal(formatSettingValue('storageDriver', 'btrfs'), 'btrfs');
  assert.equal(listFields(['cpus']), 'CPUs');
  assert.equal(listFields(['cpus', 'memoryMiB', 'diskGiB']), 'CPUs, memory and disk size');
});

test('pages come from the hash; anything else is the dashboard', () => {
  assert.equal(pageFromHash('#/settings'), 'settings');
  assert.equal(pageFromHash('#/console'), 'console');
  assert.equal(pageFromHash('#logs'), 'logs');
  assert.equal(pageFromHash(''), 'dashboard');
  assert.equal(pageFromHash('#token=abc'), 'dashboard');
  assert.equal(pageFromHash('#/nowhere'), 'dashboard');
  assert.equal(hashFor('settings'), '#/settings');
});

test('a published port: its link on 127.0.0.1, and host → container', () => {
  const port = { port: 8080, privatePort: 80, containerName: 'web' };
  assert.equal(publishedPortUrl(port), 'http://127.0.0.1:8080/');
  assert.equal(formatPortMapping(port), '8080 → 80/tcp');
});
