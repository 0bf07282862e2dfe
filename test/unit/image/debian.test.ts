// Reading apt's package records and ELF dependencies, from text the tools really print.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DebianPackageCache,
  UnknownPackageError,
  dependencyNames,
  parseControlStanzas,
} from '../../../core/image/debian.ts';
import { parseReadelf } from '../../../core/image/elf.ts';

test('apt-cache show output splits into stanzas with continued fields', () => {
  const stanzas = parseControlStanzas(
    'Package: a\nVersion: 1:2.0-1\nDescription: first\n more text\n\nPackage: b\nVersion: 3\nSHA256: ff\n',
  );
  assert.equal(stanzas.length, 2);
  assert.equal(stanzas[0]!.get('Version'), '1:2.0-1');
  assert.equal(stanzas[0]!.get('Description'), 'first\nmore text');
  assert.equal(stanzas[1]!.get('SHA256'), 'ff');
});

test('Depends names drop versions, architectures and later alternatives', () => {
  assert.deepEqual(
    dependencyNames('libc6 (>= 2.34), libcrypt1:amd64 (>= 1:4.1.0), zlib1g | libz, debconf'),
    ['libc6', 'libcrypt1', 'zlib1g', 'debconf'],
  );
  assert.deepEqual(dependencyNames(''), []);
});

test('readelf output gives the needed sonames and the interpreter', () => {
  const needs = parseReadelf(
    '      [Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]\n' +
      ' 0x0000000000000001 (NEEDED)             Shared library: [libcrypt.so.1]\n' +
      ' 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n',
  );
  assert.deepEqual(needs, {
    needed: ['libcrypt.so.1', 'libc.so.6'],
    interpreter: '/lib64/ld-linux-x86-64.so.2',
  });
  assert.deepEqual(parseReadelf('There is no dynamic section in this file.\n'), {
    needed: [],
    interpreter: null,
  });
});

test('an unknown package fails with a message naming it and its spec field (real apt-cache)', (t) => {
  if (spawnSync('apt-cache', ['--version']).status !== 0)
    return t.skip('apt-cache is not installed');
  const cache = mkdtempSync(join(tmpdir(), 'berth-debs-'));
  try {
    const debs = new DebianPackageCache(cache);
    assert.throws(
      () => debs.get('berth-no-such-package', 'packages[3].name'),
      (e: unknown) =>
        e instanceof UnknownPackageError &&
        /packages\[3\]\.name: Debian package "berth-no-such-package" is not known to apt/.test(
          e.message,
        ),
    );
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
