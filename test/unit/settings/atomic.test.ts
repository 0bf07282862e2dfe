// Atomic writes: readers and restarts see the old file or the whole new one, never half; a crash
// can leave only a temp file, which readers ignore and the next write clears away.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { isTempFile, writeFileAtomic } from '../../../core/settings/atomic-file.ts';
import { SettingsStore } from '../../../core/settings/store.ts';
import { HOST, listFiles, snapshot, withStore, withTempDir } from './helpers.ts';

const crash = () => {
  throw new Error('simulated crash');
};

test('writeFileAtomic replaces the whole file, private, with no temp file left', () =>
  withTempDir((dir) => {
    const path = join(dir, 'f.json');
    writeFileAtomic(path, 'one');
    writeFileAtomic(path, 'two');
    assert.equal(readFileSync(path, 'utf8'), 'two');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(listFiles(dir), ['f.json']);
  }));

test('a write that fails before its rename leaves the old file and no temp file', () =>
  withTempDir((dir) => {
    const path = join(dir, 'f.json');
    writeFileAtomic(path, 'old');
    let seen = '';
    assert.throws(
      () =>
        writeFileAtomic(path, 'new', {
          beforeRename: (temp) => {
            seen = temp;
            assert.equal(readFileSync(temp, 'utf8'), 'new');
            crash();
          },
        }),
      /simulated crash/,
    );
    assert.ok(isTempFile(basename(seen)), seen);
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(listFiles(dir), ['f.json']);
  }));

test('many changes leave no temp files behind', () =>
  withStore((store, dir) => {
    for (let cpus = 1; cpus <= 8; cpus++) store.set({ cpus }, { source: 'cli' });
    store.rollback(3, { source: 'gui' });
    store.exportBackup(join(dir, 'backup.json'));
    assert.deepEqual(
      listFiles(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
    assert.equal(listFiles(dir).filter((f) => f.startsWith('revisions/')).length, 10);
  }));

test('temp files a crash left behind are ignored by open and cleared by the next write', () =>
  withStore((store, dir) => {
    store.set({ cpus: 4 }, { source: 'cli' });
    // A crash between write and rename: half a revision 2 and a HEAD that would name it.
    writeFileSync(join(dir, 'revisions', '.2.json.4242.deadbeef.tmp'), '{"revision": 2, "ti');
    writeFileSync(join(dir, '.HEAD.4242.cafef00d.tmp'), '2\n');

    const reopened = SettingsStore.open(dir, HOST);
    assert.deepEqual(reopened.warnings, []);
    assert.equal(reopened.current().revision, 1);
    assert.equal(reopened.history().length, 2);

    assert.equal(reopened.set({ cpus: 5 }, { source: 'cli' }).revision, 2);
    assert.deepEqual(
      listFiles(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  }));

test('a crash before the revision is renamed in changes nothing', () =>
  withTempDir((home) => {
    const dir = join(home, 'settings');
    let failNext = false;
    const store = SettingsStore.open(dir, HOST, {
      beforeRename: () => {
        if (failNext) crash();
      },
    });
    store.set({ cpus: 4 }, { source: 'cli' });
    const before = snapshot(dir);
    failNext = true;
    assert.throws(() => store.set({ cpus: 6 }, { source: 'cli' }), /simulated crash/);
    assert.deepEqual(snapshot(dir), before);
    assert.equal(store.current().settings.cpus, 4);
    failNext = false;
    assert.equal(store.set({ cpus: 6 }, { source: 'cli' }).revision, 2);
  }));

test('a crash between the revision and HEAD keeps the old revision current', () =>
  withTempDir((home) => {
    const dir = join(home, 'settings');
    let failHead = false;
    const store = SettingsStore.open(dir, HOST, {
      beforeRename: (_temp, path) => {
        if (failHead && basename(path) === 'HEAD') crash();
      },
    });
    store.set({ cpus: 4 }, { source: 'cli' });
    failHead = true;
    assert.throws(() => store.set({ cpus: 6 }, { source: 'cli' }), /simulated crash/);
    assert.equal(readFileSync(join(dir, 'HEAD'), 'utf8'), '1\n');
    assert.ok(listFiles(dir).includes('revisions/2.json'));

    // What a restart would see: revision 1, and revision 2 reported as never made current.
    const restarted = SettingsStore.open(dir, HOST);
    assert.equal(restarted.current().settings.cpus, 4);
    assert.match(restarted.warnings[0]!, /revision 2 was written but never made current/);

    // The same process carries on: it re-reads the directory and never reuses revision 2.
    failHead = false;
    assert.equal(store.current().settings.cpus, 4);
    const result = store.set({ cpus: 6 }, { source: 'cli' });
    assert.equal(result.revision, 3);
    assert.deepEqual(result.diff, [{ field: 'cpus', from: 4, to: 6 }]);
    assert.ok(!listFiles(dir).includes('revisions/2.json'));
    assert.ok(listFiles(dir).some((f) => /^damaged\/[^/]+\/revisions\/2\.json$/.test(f)));
    assert.deepEqual(SettingsStore.open(dir, HOST).warnings, []);
  }));
