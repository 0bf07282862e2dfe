// A damaged store falls back to the newest intact revision and says so; the next write repairs
// it, moving damaged files aside (never deleting them); with nothing intact it starts over.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { settingsSha256 } from '../../../core/settings/commit.ts';
import { SettingsStore, SettingsStoreError } from '../../../core/settings/store.ts';
import { HOST, listFiles, readJson, withTempDir } from './helpers.ts';

/** A store with revisions 0 (cpus 2), 1 (cpus 3), 2 (cpus 4); HEAD names 2. */
function withHistory(run: (dir: string) => void) {
  withTempDir((home) => {
    const dir = join(home, 'settings');
    const store = SettingsStore.open(dir, HOST);
    store.set({ cpus: 3 }, { source: 'cli' });
    store.set({ cpus: 4 }, { source: 'gui' });
    run(dir);
  });
}

const rev = (dir: string, n: number) => join(dir, 'revisions', `${n}.json`);

function damagedFiles(dir: string): string[] {
  return listFiles(dir)
    .filter((f) => f.startsWith('damaged/'))
    .map((f) => f.replace(/^damaged\/[^/]+\//, ''));
}

/** Opens the damaged store, checks the fallback, writes once, and checks the repair. */
function expectFallbackAndRepair(
  dir: string,
  expected: { revision: number; cpus: number; warnings: string[]; movedAside: string[] },
) {
  const store = SettingsStore.open(dir, HOST);
  assert.deepEqual(store.warnings, expected.warnings);
  assert.equal(store.current().revision, expected.revision);
  assert.equal(store.current().settings.cpus, expected.cpus);
  assert.equal(store.history()[0]!.revision, expected.revision);

  const result = store.set({ memoryMiB: 4096 }, { source: 'cli' });
  assert.equal(result.revision, 3, 'revision numbers are never reused');
  assert.deepEqual(result.diff, [{ field: 'memoryMiB', from: 2048, to: 4096 }]);
  assert.equal(readFileSync(join(dir, 'HEAD'), 'utf8'), '3\n');
  assert.match(store.warnings.at(-1)!, /^settings: repaired: HEAD names revision 3/);
  assert.deepEqual(damagedFiles(dir).sort(), expected.movedAside.sort());

  const reopened = SettingsStore.open(dir, HOST);
  assert.deepEqual(reopened.warnings, []);
  assert.deepEqual(reopened.current(), store.current());
  assert.deepEqual(reopened.history(), store.history());
}

test('a damaged HEAD falls back to the newest revision; the next write repairs it', () =>
  withHistory((dir) => {
    writeFileSync(join(dir, 'HEAD'), 'garbage\n');
    expectFallbackAndRepair(dir, {
      revision: 2,
      cpus: 4,
      warnings: ['settings: HEAD is damaged (not a revision number); using revision 2'],
      movedAside: ['HEAD'],
    });
  }));

test('a missing HEAD falls back to the newest revision', () =>
  withHistory((dir) => {
    rmSync(join(dir, 'HEAD'));
    expectFallbackAndRepair(dir, {
      revision: 2,
      cpus: 4,
      warnings: ['settings: HEAD is missing; using revision 2'],
      movedAside: [],
    });
  }));

test('a truncated latest revision falls back to the one before', () =>
  withHistory((dir) => {
    const text = readFileSync(rev(dir, 2), 'utf8');
    writeFileSync(rev(dir, 2), text.slice(0, text.length / 2));
    expectFallbackAndRepair(dir, {
      revision: 1,
      cpus: 3,
      warnings: ['settings: revision 2 is damaged (truncated JSON); using revision 1'],
      movedAside: ['revisions/2.json'],
    });
  }));

test('a latest revision that is not JSON falls back to the one before', () =>
  withHistory((dir) => {
    writeFileSync(rev(dir, 2), '{"revision": 2, oops}');
    expectFallbackAndRepair(dir, {
      revision: 1,
      cpus: 3,
      warnings: ['settings: revision 2 is damaged (bad JSON); using revision 1'],
      movedAside: ['revisions/2.json'],
    });
  }));

test('a latest revision with the wrong checksum falls back to the one before', () =>
  withHistory((dir) => {
    const record = readJson(rev(dir, 2));
    record.settings.cpus = 8; // edited by hand, checksum not updated
    writeFileSync(rev(dir, 2), JSON.stringify(record));
    expectFallbackAndRepair(dir, {
      revision: 1,
      cpus: 3,
      warnings: ['settings: revision 2 is damaged (bad checksum); using revision 1'],
      movedAside: ['revisions/2.json'],
    });
  }));

test('a latest revision whose settings fail validation falls back to the one before', () =>
  withHistory((dir) => {
    const record = readJson(rev(dir, 2));
    record.settings.memoryMiB = 100;
    record.sha256 = settingsSha256(record.settings);
    writeFileSync(rev(dir, 2), JSON.stringify(record));
    expectFallbackAndRepair(dir, {
      revision: 1,
      cpus: 3,
      warnings: [
        'settings: revision 2 is damaged (invalid settings: memory must be at least 512 MiB ' +
          'in steps of 256 (got 100)); using revision 1',
      ],
      movedAside: ['revisions/2.json'],
    });
  }));

test('a revision file that claims another number is damaged', () =>
  withHistory((dir) => {
    writeFileSync(rev(dir, 2), readFileSync(rev(dir, 1)));
    expectFallbackAndRepair(dir, {
      revision: 1,
      cpus: 3,
      warnings: ['settings: revision 2 is damaged (it says revision 1); using revision 1'],
      movedAside: ['revisions/2.json'],
    });
  }));

test('HEAD naming a missing revision falls back to the one before', () =>
  withHistory((dir) => {
    rmSync(rev(dir, 2));
    writeFileSync(join(dir, 'HEAD'), '2\n');
    const store = SettingsStore.open(dir, HOST);
    assert.deepEqual(store.warnings, ['settings: revision 2 is missing; using revision 1']);
    assert.equal(store.set({ cpus: 5 }, { source: 'cli' }).revision, 2);
    assert.deepEqual(SettingsStore.open(dir, HOST).warnings, []);
  }));

test('a damaged older revision is left out of history and cannot be restored', () =>
  withHistory((dir) => {
    writeFileSync(rev(dir, 1), '');
    const store = SettingsStore.open(dir, HOST);
    assert.deepEqual(store.warnings, [
      'settings: revision 1 is damaged (empty file); it is left out of history',
    ]);
    assert.equal(store.current().revision, 2);
    assert.deepEqual(
      store.history().map((c) => c.revision),
      [2, 0],
    );
    assert.throws(
      () => store.rollback(1, { source: 'cli' }),
      (e: unknown) =>
        e instanceof SettingsStoreError &&
        e.message === 'revision 1 is damaged (empty file) and cannot be restored',
    );
    store.set({ cpus: 6 }, { source: 'cli' });
    assert.deepEqual(damagedFiles(dir), ['revisions/1.json']);
  }));

test('a revision written but never made current (crash before HEAD) is ignored, then moved aside', () =>
  withHistory((dir) => {
    const record = readJson(rev(dir, 2));
    record.revision = 3;
    record.settings.cpus = 7;
    record.sha256 = settingsSha256(record.settings);
    writeFileSync(rev(dir, 3), JSON.stringify(record));
    const store = SettingsStore.open(dir, HOST);
    assert.deepEqual(store.warnings, [
      'settings: revision 3 was written but never made current (an interrupted change); ignoring it',
    ]);
    assert.equal(store.current().settings.cpus, 4);
    assert.equal(store.set({ cpus: 5 }, { source: 'cli' }).revision, 4);
    assert.deepEqual(damagedFiles(dir), ['revisions/3.json']);
    assert.deepEqual(SettingsStore.open(dir, HOST).warnings, []);
  }));

test('a store with nothing intact starts over from defaults, its files moved aside', () =>
  withHistory((dir) => {
    const before: Record<string, string> = {};
    for (const n of [0, 1, 2]) {
      writeFileSync(rev(dir, n), `broken ${n}`);
      before[`revisions/${n}.json`] = `broken ${n}`;
    }
    writeFileSync(join(dir, 'HEAD'), 'xx');
    before.HEAD = 'xx';

    const store = SettingsStore.open(dir, HOST);
    assert.deepEqual(store.current(), {
      revision: 0,
      settings: { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' },
    });
    const last = store.warnings.at(-1)!;
    assert.match(
      last,
      /^settings: no revision is intact; started over from defaults \(the damaged files are in .*\/settings\/damaged\/[^/]+\)$/,
    );
    assert.ok(
      store.warnings.includes(
        'settings: HEAD is damaged (not a revision number); no revision is intact',
      ),
    );
    assert.equal(store.history().length, 1);
    assert.equal(store.history()[0]!.source, 'init');

    // Every damaged file is kept, byte for byte.
    const [aside] = readdirSync(join(dir, 'damaged'));
    for (const [path, text] of Object.entries(before)) {
      assert.equal(readFileSync(join(dir, 'damaged', aside!, path), 'utf8'), text);
    }
    assert.deepEqual(
      listFiles(dir).filter((f) => !f.startsWith('damaged/')),
      ['HEAD', 'revisions/0.json'],
    );
    assert.deepEqual(SettingsStore.open(dir, HOST).warnings, []);
  }));

test('HEAD naming a revision that is gone, with no other revision, starts over', () =>
  withTempDir((home) => {
    const dir = join(home, 'settings');
    SettingsStore.open(dir, HOST);
    rmSync(rev(dir, 0));
    const store = SettingsStore.open(dir, HOST);
    assert.equal(store.current().revision, 0);
    assert.match(store.warnings.join('\n'), /revision 0 is missing; no earlier revision is intact/);
    assert.ok(existsSync(rev(dir, 0)));
  }));
