// The settings form's data (renderer/src/pages/settings/settings-form.ts): only changed fields
// are sent, numbers as numbers and anything else as typed (the server's schema judges it), and
// each server message lands beside its field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  changedFields,
  fieldHints,
  formValues,
  isDirty,
  placeErrors,
} from '../../../renderer/src/pages/settings/settings-form.ts';
import { settingsView } from './fixtures.ts';

const { settings, limits } = settingsView();

test('unchanged inputs send nothing', () => {
  assert.deepEqual(changedFields(formValues(settings), settings), {});
  assert.equal(isDirty(formValues(settings), settings), false);
});

test('changed inputs are sent, numbers as numbers', () => {
  const values = { ...formValues(settings), cpus: ' 4 ', storageDriver: 'btrfs' };
  assert.deepEqual(changedFields(values, settings), { cpus: 4, storageDriver: 'btrfs' });
  assert.equal(isDirty(values, settings), true);
});

test('values the client would doubt are still sent, for the schema to judge', () => {
  const values = { ...formValues(settings), memoryMiB: '100', diskGiB: '', cpus: '2.5' };
  assert.deepEqual(changedFields(values, settings), { memoryMiB: 100, diskGiB: '', cpus: 2.5 });
  assert.deepEqual(changedFields({ ...formValues(settings), cpus: 'lots' }, settings), {
    cpus: 'lots',
  });
});

test('server errors go beside their field, with or without the changes. prefix', () => {
  const placed = placeErrors({
    memoryMiB: 'memory must be …',
    'changes.cpus': 'cpus must be …',
    message: 'is too long',
  });
  assert.deepEqual(placed.fields, { memoryMiB: 'memory must be …', cpus: 'cpus must be …' });
  assert.deepEqual(placed.other, ['message: is too long']);
});

test('hints come from this host’s limits', () => {
  const hints = fieldHints(limits);
  assert.equal(hints.cpus, '1 to 8 on this machine');
  assert.equal(hints.memoryMiB, '512 to 15104 MiB, in steps of 256');
  assert.match(hints.diskGiB, /^64 to 400 GiB/);
});
