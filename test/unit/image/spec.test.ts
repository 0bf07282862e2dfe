// The image spec parser: the shipped spec is valid, and each kind of mistake names its field.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { stringify, parse } from 'yaml';
import { buildPaths } from '../../../core/paths.ts';
import { ImageSpecError, parseImageSpec } from '../../../core/image/spec.ts';

const shipped = readFileSync(buildPaths.imageSpec, 'utf8');

/** The shipped spec with one change applied to its parsed document. */
function variant(change: (doc: Record<string, any>) => void): string {
  const doc = parse(shipped);
  change(doc);
  return stringify(doc);
}

function expectError(text: string, field: string, message: RegExp) {
  assert.throws(
    () => parseImageSpec(text),
    (error: unknown) => {
      assert.ok(error instanceof ImageSpecError, `got ${String(error)}`);
      assert.equal(error.field, field);
      assert.match(error.message, message);
      return true;
    },
  );
}

test('the shipped spec parses', () => {
  const spec = parseImageSpec(shipped);
  assert.equal(spec.name, 'berth');
  assert.match(spec.kernel.package, /^linux-image-6\.12/);
  assert.ok(spec.modules.includes('virtio_blk'));
  assert.ok(spec.modules.includes('vmw_vsock_virtio_transport'));
  assert.ok(spec.guest.some((g) => g.path === '/init'));
  const shadow = spec.files.find((f) => f.path === '/etc/shadow');
  assert.equal(shadow?.mode, 0o600);
  assert.equal(spec.packages.find((p) => p.name === 'busybox-static')?.busyboxApplets, true);
});

test('a bad package name, module name or path names its field', () => {
  expectError(
    variant((d) => (d.packages[1].name = 'Dropbear Bin')),
    'packages[1].name',
    /Debian package name/,
  );
  expectError(
    variant((d) => (d.modules[2] = 'vsock.ko')),
    'modules[2]',
    /kernel module name/,
  );
  expectError(
    variant((d) => (d.packages[0].files = ['bin/busybox'])),
    'packages[0].files[0]',
    /absolute path/,
  );
  expectError(
    variant((d) => (d.files[0].path = '/etc/../hostname')),
    'files[0].path',
    /without \. or \.\./,
  );
  expectError(
    variant((d) => (d.files[0].mode = 'rw')),
    'files[0].mode',
    /octal/,
  );
});

test('unknown keys, duplicates, missing parts and broken YAML are refused', () => {
  expectError(
    variant((d) => (d.kernel.cmdlin = 'x')),
    'kernel.cmdlin',
    /unknown key/,
  );
  expectError(
    variant((d) => d.modules.push('virtio-blk')),
    'modules',
    /appears twice/,
  );
  expectError(
    variant((d) => delete d.kernel),
    'kernel',
    /must be a mapping/,
  );
  expectError(
    variant((d) => (d.guest = [])),
    'guest',
    /\/init/,
  );
  expectError(
    variant((d) => (d.packages[0].files = [])),
    'packages[0].files',
    /at least one/,
  );
  expectError('name: [unclosed', '(document)', /not valid YAML/);
});
