// The system image's part of the spec and its merged-/usr layout.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { buildPaths } from '../../../core/paths.ts';
import { ImageSpecError, parseImageSpec } from '../../../core/image/spec.ts';
import { mergedUsrPath } from '../../../core/image/system-image.ts';

const shipped = readFileSync(buildPaths.imageSpec, 'utf8');

function withSystem(system: unknown): string {
  const doc = parse(shipped) as Record<string, unknown>;
  doc.system = system;
  return stringify(doc);
}

test('the shipped spec has the container engine in its system image', () => {
  const spec = parseImageSpec(shipped);
  assert.ok(spec.system);
  for (const name of ['docker.io', 'containerd', 'runc'])
    assert.ok(spec.system.packages.includes(name), name);
  assert.ok(spec.system.links.some((l) => l.path === '/usr/sbin/iptables'));
});

test('a spec without a system section has no system image', () => {
  const doc = parse(shipped) as Record<string, unknown>;
  delete doc.system;
  assert.equal(parseImageSpec(stringify(doc)).system, null);
});

test('system section mistakes name their field', () => {
  const expect = (system: unknown, field: string, message: RegExp) =>
    assert.throws(
      () => parseImageSpec(withSystem(system)),
      (error: unknown) =>
        error instanceof ImageSpecError && error.field === field && message.test(error.message),
    );
  expect({ packages: [] }, 'system.packages', /at least one/);
  expect({ packages: ['Docker IO'] }, 'system.packages[0]', /Debian package name/);
  expect({ packages: ['runc', 'runc'] }, 'system.packages', /twice/);
  expect({ packages: ['runc'], exclude: ['usr/share'] }, 'system.exclude[0]', /absolute/);
  expect({ packages: ['runc'], mounts: [] }, 'system.mounts', /unknown key/);
});

test('split-/usr paths land under /usr, others stay', () => {
  assert.equal(mergedUsrPath('/sbin/mkfs.btrfs'), '/usr/sbin/mkfs.btrfs');
  assert.equal(
    mergedUsrPath('/lib/x86_64-linux-gnu/libz.so.1'),
    '/usr/lib/x86_64-linux-gnu/libz.so.1',
  );
  assert.equal(mergedUsrPath('/bin'), '/usr/bin');
  assert.equal(mergedUsrPath('/usr/bin/docker'), '/usr/bin/docker');
  assert.equal(mergedUsrPath('/library'), '/library');
  assert.equal(mergedUsrPath('/etc/containerd/config.toml'), '/etc/containerd/config.toml');
});

test('module groups: the engine and btrfs groups load apart from the boot modules', () => {
  const spec = parseImageSpec(shipped);
  const groups = Object.fromEntries(spec.moduleGroups.map((g) => [g.name, g.modules]));
  assert.ok(groups.engine?.includes('bridge'));
  assert.ok(groups.btrfs?.includes('btrfs'));
  assert.ok(!spec.modules.includes('btrfs'), 'btrfs is not loaded at every boot');
  const doc = parse(shipped) as Record<string, any>;
  doc['module-groups'].engine.push('virtio_blk');
  assert.throws(
    () => parseImageSpec(stringify(doc)),
    (error: unknown) => error instanceof ImageSpecError && /appears twice/.test(error.message),
  );
});
