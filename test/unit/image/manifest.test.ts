// The manifest: one sha256 per artifact, stable text, and a check that catches a changed file.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type ImageManifest,
  ImageIntegrityError,
  describeArtifacts,
  serializeManifest,
  verifyImage,
} from '../../../core/image/manifest.ts';

const contents = {
  vmlinuz: Buffer.from('kernel bytes'),
  'initrd.img': Buffer.from('initrd bytes'),
  cmdline: Buffer.from('console=ttyS0\n'),
};

function manifestFor(packages: ImageManifest['packages']): ImageManifest {
  return {
    name: 'berth',
    kernel: { package: 'linux-image-x', version: '1', release: 'x' },
    packages,
    modules: ['virtio_blk.ko.xz'],
    initrd: { entries: 3, uncompressedBytes: 12 },
    artifacts: describeArtifacts(contents),
  };
}

test('every artifact is listed with its sha256 and size', () => {
  const artifacts = describeArtifacts(contents);
  assert.deepEqual(Object.keys(artifacts), ['vmlinuz', 'initrd.img', 'cmdline']);
  assert.equal(
    artifacts.cmdline.sha256,
    createHash('sha256').update('console=ttyS0\n').digest('hex'),
  );
  assert.equal(artifacts.vmlinuz.bytes, 12);
});

test('serialization does not depend on the order packages were fetched in', () => {
  const a = { name: 'a', version: '1', sha256: '00' };
  const b = { name: 'b', version: '2', sha256: '11' };
  assert.equal(serializeManifest(manifestFor([b, a])), serializeManifest(manifestFor([a, b])));
});

test('verifyImage accepts a matching image and names a changed or missing artifact', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-manifest-'));
  try {
    for (const [name, data] of Object.entries(contents)) writeFileSync(join(dir, name), data);
    writeFileSync(join(dir, 'manifest.json'), serializeManifest(manifestFor([])));
    assert.equal(verifyImage(dir).name, 'berth');
    writeFileSync(join(dir, 'initrd.img'), 'tampered');
    assert.throws(
      () => verifyImage(dir),
      (e: unknown) => e instanceof ImageIntegrityError && /initrd\.img has sha256/.test(e.message),
    );
    rmSync(join(dir, 'vmlinuz'));
    assert.throws(() => verifyImage(dir), /vmlinuz is missing/);
    rmSync(join(dir, 'manifest.json'));
    assert.throws(() => verifyImage(dir), /no factory image.*npm run image/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
