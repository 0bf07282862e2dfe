// The versioned store: commits with time, source, message and diff; history; no-op and refused
// changes write nothing; rollback is a new commit; backup has every revision; reset keeps history.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { settingsSha256 } from '../../../core/settings/commit.ts';
import {
  SettingsStore,
  SettingsStoreError,
  SettingsValidationError,
} from '../../../core/settings/store.ts';
import type { SettingsBackup } from '../../../core/settings/store.ts';
import { HOST, readJson, snapshot, withStore, withTempDir } from './helpers.ts';

const DEFAULTS = { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' };

test('a new store has revision 0 with the defaults, private files, and HEAD naming it', () =>
  withStore((store, dir) => {
    assert.deepEqual(store.current(), { revision: 0, settings: DEFAULTS });
    assert.deepEqual(store.warnings, []);
    assert.equal(readFileSync(join(dir, 'HEAD'), 'utf8'), '0\n');
    const rev0 = readJson(join(dir, 'revisions/0.json'));
    assert.deepEqual(rev0, {
      revision: 0,
      time: '2025-01-01T00:00:01.000Z',
      source: 'init',
      message: 'factory defaults',
      settings: DEFAULTS,
      diff: [],
      sha256: settingsSha256(DEFAULTS as never),
    });
    for (const [path, mode] of [
      ['', 0o700],
      ['revisions', 0o700],
      ['HEAD', 0o600],
      ['revisions/0.json', 0o600],
    ] as const) {
      assert.equal(statSync(join(dir, path)).mode & 0o777, mode, path);
    }
  }));

test('set commits a revision with time, source, message, diff and what needs a restart', () =>
  withStore((store, dir) => {
    const result = store.set({ memoryMiB: 4096, cpus: 4 }, { source: 'gui', message: 'more room' });
    assert.deepEqual(result, {
      changed: true,
      revision: 1,
      settings: { ...DEFAULTS, cpus: 4, memoryMiB: 4096 },
      diff: [
        { field: 'cpus', from: 2, to: 4 },
        { field: 'memoryMiB', from: 2048, to: 4096 },
      ],
      restartNeeded: ['cpus', 'memoryMiB'],
    });
    assert.equal(readFileSync(join(dir, 'HEAD'), 'utf8'), '1\n');
    const disk = store.set({ diskGiB: 100 }, { source: 'cli' });
    assert.deepEqual(disk.restartNeeded, ['diskGiB']);

    const history = store.history();
    assert.deepEqual(
      history.map((c) => [c.revision, c.source, c.message]),
      [
        [2, 'cli', 'disk 64 -> 100'],
        [1, 'gui', 'more room'],
        [0, 'init', 'factory defaults'],
      ],
    );
    assert.equal(history[0]!.time, '2025-01-01T00:00:03.000Z');
    assert.deepEqual(history[0]!.diff, [{ field: 'diskGiB', from: 64, to: 100 }]);
    assert.equal(history[0]!.sha256, settingsSha256(history[0]!.settings));
    assert.deepEqual(readJson(join(dir, 'revisions/2.json')), history[0]);

    // Another process opening the store sees the same thing.
    const again = SettingsStore.open(dir, HOST);
    assert.deepEqual(again.history(), history);
    assert.deepEqual(again.current(), store.current());
    assert.deepEqual(again.warnings, []);
  }));

test('a change to what is already current writes nothing and says so', () =>
  withStore((store, dir) => {
    store.set({ cpus: 4 }, { source: 'cli' });
    const before = snapshot(dir);
    const result = store.set({ cpus: 4, storageDriver: 'overlay2' }, { source: 'gui' });
    assert.deepEqual(result, {
      changed: false,
      revision: 1,
      settings: { ...DEFAULTS, cpus: 4 },
      diff: [],
      restartNeeded: [],
    });
    assert.deepEqual(snapshot(dir), before);
    assert.equal(store.history().length, 2);
  }));

test('a refused change throws every field error and leaves the directory byte-identical', () =>
  withStore((store, dir) => {
    store.set({ diskGiB: 80 }, { source: 'cli' });
    const before = snapshot(dir);
    assert.throws(
      () => store.set({ memoryMiB: 100, diskGiB: 32, bogus: 1 }, { source: 'cli' }),
      (error: unknown) => {
        assert.ok(error instanceof SettingsValidationError);
        assert.deepEqual(
          error.errors.map((e) => e.field),
          ['memoryMiB', 'diskGiB', 'bogus'],
        );
        assert.match(error.message, /^invalid settings: memory must be between 512 and 23552/);
        assert.match(error.message, /disk size can only grow: it is 80 GiB now \(got 32\)/);
        return true;
      },
    );
    assert.throws(() => store.set({ cpus: 3 }, { source: 'api' as never }), SettingsStoreError);
    assert.deepEqual(snapshot(dir), before);
    assert.equal(store.current().revision, 1);
  }));

test('the host is asked at each change, so free space is current', () =>
  withTempDir((home) => {
    let free = 10;
    const store = SettingsStore.open(join(home, 'settings'), () => ({
      ...HOST,
      freeDiskGiB: free,
    }));
    assert.throws(() => store.set({ diskGiB: 80 }, { source: 'cli' }), /64 to 74 GiB \(got 80\)/);
    free = 20;
    assert.equal(store.set({ diskGiB: 80 }, { source: 'cli' }).revision, 1);
  }));

test('rollback is a new commit with the old settings; history is kept', () =>
  withStore((store) => {
    store.set({ cpus: 4 }, { source: 'cli' });
    store.set({ memoryMiB: 8192, storageDriver: 'btrfs' }, { source: 'gui' });
    const result = store.rollback(1, { source: 'gui' });
    assert.deepEqual(result, {
      changed: true,
      revision: 3,
      settings: { ...DEFAULTS, cpus: 4 },
      diff: [
        { field: 'memoryMiB', from: 8192, to: 2048 },
        { field: 'storageDriver', from: 'btrfs', to: 'overlay2' },
      ],
      restartNeeded: ['memoryMiB', 'storageDriver'],
    });
    const [latest] = store.history();
    assert.equal(latest!.source, 'rollback');
    assert.equal(latest!.requestedBy, 'gui');
    assert.equal(latest!.restoredRevision, 1);
    assert.equal(latest!.message, 'roll back to revision 1');
    assert.deepEqual(
      store.history().map((c) => c.revision),
      [3, 2, 1, 0],
    );
    // Back to what is current: nothing to do.
    assert.equal(store.rollback(1, { source: 'cli' }).changed, false);
    // And forward again.
    assert.equal(store.rollback(2, { source: 'cli', message: 'undo' }).revision, 4);
    assert.equal(store.history()[0]!.message, 'undo');
  }));

test('rollback that would shrink the disk is refused and writes nothing', () =>
  withStore((store, dir) => {
    store.set({ cpus: 4 }, { source: 'cli' });
    store.set({ diskGiB: 128 }, { source: 'cli' });
    const before = snapshot(dir);
    assert.throws(
      () => store.rollback(1, { source: 'gui' }),
      (error: unknown) =>
        error instanceof SettingsValidationError &&
        error.errors[0]?.field === 'diskGiB' &&
        error.message ===
          'cannot roll back to revision 1: disk size can only grow, even on rollback: it is ' +
            '128 GiB now and revision 1 had 64 GiB (change the other settings instead, or ' +
            'reset to factory for a smaller disk)',
    );
    assert.deepEqual(snapshot(dir), before);
  }));

test('rollback is checked against this host and refuses revisions that do not exist', () =>
  withTempDir((home) => {
    const dir = join(home, 'settings');
    const big = SettingsStore.open(dir, HOST);
    big.set({ cpus: 8 }, { source: 'cli' });
    big.set({ cpus: 2 }, { source: 'cli' });
    const small = SettingsStore.open(dir, { ...HOST, cores: 4 });
    assert.throws(
      () => small.rollback(1, { source: 'cli' }),
      /^SettingsValidationError: cannot roll back to revision 1: cpus must be between 1 and 4/,
    );
    assert.throws(
      () => small.rollback(9, { source: 'cli' }),
      (e: unknown) =>
        e instanceof SettingsStoreError &&
        e.message === 'there is no revision 9; the revisions are 0 to 2',
    );
  }));

test('settings this host cannot honour are reported when the store opens', () =>
  withTempDir((home) => {
    const dir = join(home, 'settings');
    SettingsStore.open(dir, HOST).set({ cpus: 8 }, { source: 'cli' });
    const store = SettingsStore.open(dir, { ...HOST, cores: 4 });
    assert.deepEqual(store.warnings, [
      'settings: cpus is 8 but this host has 4 cores; change it before starting the VM',
    ]);
    assert.equal(store.current().settings.cpus, 8);
    // Unrelated changes still work.
    assert.equal(store.set({ memoryMiB: 4096 }, { source: 'cli' }).changed, true);
  }));

test('the backup holds every revision and is private', () =>
  withStore((store, dir) => {
    store.set({ cpus: 4 }, { source: 'cli' });
    store.set({ storageDriver: 'vfs' }, { source: 'gui' });
    store.rollback(0, { source: 'cli' });
    const path = join(dir, '..', 'backups', 'settings.json');
    assert.deepEqual(store.exportBackup(path), { path, revisions: 4 });
    const backup = readJson(path) as SettingsBackup;
    assert.equal(backup.format, 'berth-settings-backup');
    assert.equal(backup.version, 1);
    assert.equal(backup.head, 3);
    assert.deepEqual(backup.revisions, [...store.history()].reverse());
    assert.deepEqual(
      backup.revisions.map((c) => c.revision),
      [0, 1, 2, 3],
    );
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(join(dir, '..', 'backups')).filter((n) => n.endsWith('.tmp')),
      [],
    );
  }));

test('reset to defaults is a new commit; history is kept and the disk may go back', () =>
  withStore((store) => {
    store.set({ cpus: 4, diskGiB: 128 }, { source: 'cli' });
    const result = store.resetToDefaults({ source: 'reset', requestedBy: 'gui' });
    assert.deepEqual(result, {
      changed: true,
      revision: 2,
      settings: DEFAULTS,
      diff: [
        { field: 'cpus', from: 4, to: 2 },
        { field: 'diskGiB', from: 128, to: 64 },
      ],
      restartNeeded: ['cpus', 'diskGiB'],
    });
    const [latest] = store.history();
    assert.equal(latest!.source, 'reset');
    assert.equal(latest!.requestedBy, 'gui');
    assert.equal(latest!.message, 'reset to factory defaults');
    assert.equal(store.history().length, 3);
    // A reset is always recorded, even when nothing changes.
    const again = store.resetToDefaults();
    assert.deepEqual([again.changed, again.revision, again.diff], [true, 3, []]);
    // The disk may grow back to the old size by rollback (within free space).
    assert.equal(store.rollback(1, { source: 'cli' }).settings.diskGiB, 128);
  }));

test('the store directory is created private even deep in a new data directory', () =>
  withTempDir((home) => {
    const dir = join(home, 'a', 'b', 'settings');
    SettingsStore.open(dir, HOST);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.ok(existsSync(join(dir, 'revisions', '0.json')));
  }));
