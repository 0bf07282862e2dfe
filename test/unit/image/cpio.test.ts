// The initrd's cpio writer: the format the kernel (and GNU cpio) reads, and byte-identical output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpioArchive, archivePath } from '../../../core/image/cpio.ts';

interface Parsed {
  name: string;
  mode: number;
  ino: number;
  data: Buffer;
  rdev: [number, number];
}

/** An independent reader of the newc format, written from the spec (not from the writer). */
function parseNewc(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  for (;;) {
    assert.equal(buf.toString('ascii', off, off + 6), '070701', `magic at ${off}`);
    const field = (i: number) =>
      parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    assert.equal(buf[off + 110 + nameSize - 1], 0, 'name is NUL-terminated');
    let dataStart = off + 110 + nameSize;
    dataStart += (4 - (dataStart % 4)) % 4;
    if (name === 'TRAILER!!!') {
      assert.equal(dataStart, buf.length, 'nothing after the trailer');
      return out;
    }
    assert.equal(field(2), 0, 'uid 0');
    assert.equal(field(5), 0, 'mtime 0');
    out.push({
      name,
      mode: field(1),
      ino: field(0),
      data: buf.subarray(dataStart, dataStart + size),
      rdev: [field(9), field(10)],
    });
    off = dataStart + size;
    off += (4 - (off % 4)) % 4;
  }
}

function sample(): CpioArchive {
  const archive = new CpioArchive();
  archive.add('/usr/bin/tool', {
    kind: 'file',
    mode: 0o755,
    data: Buffer.from('#!/bin/sh\necho hi\n'),
  });
  archive.add('/bin/sh', { kind: 'symlink', target: '/bin/busybox' });
  archive.add('/etc/odd', { kind: 'file', mode: 0o600, data: Buffer.from('12345') });
  archive.add('/dev/console', { kind: 'char-device', mode: 0o600, major: 5, minor: 1 });
  archive.add('/tmp', { kind: 'directory', mode: 0o1777 });
  return archive;
}

test('entries come out parents first, with their types, modes and contents', () => {
  const entries = parseNewc(sample().toBuffer());
  assert.deepEqual(
    entries.map((e) => e.name),
    [
      'bin',
      'bin/sh',
      'dev',
      'dev/console',
      'etc',
      'etc/odd',
      'tmp',
      'usr',
      'usr/bin',
      'usr/bin/tool',
    ],
  );
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.equal(byName.get('usr/bin/tool')!.mode, 0o100755);
  assert.equal(byName.get('usr/bin/tool')!.data.toString(), '#!/bin/sh\necho hi\n');
  assert.equal(byName.get('bin/sh')!.mode, 0o120777);
  assert.equal(byName.get('bin/sh')!.data.toString(), '/bin/busybox');
  assert.equal(byName.get('etc/odd')!.mode, 0o100600);
  assert.equal(byName.get('tmp')!.mode, 0o041777);
  assert.equal(byName.get('usr')!.mode, 0o040755);
  assert.deepEqual(byName.get('dev/console')!.rdev, [5, 1]);
  assert.deepEqual(
    entries.map((e) => e.ino),
    entries.map((_, i) => i + 1),
    'inodes are numbered in order',
  );
});

test('the same tree gives the same bytes, whatever order it was added in', () => {
  const a = sample().toBuffer();
  const b = new CpioArchive();
  b.add('/tmp', { kind: 'directory', mode: 0o1777 });
  b.add('/dev/console', { kind: 'char-device', mode: 0o600, major: 5, minor: 1 });
  b.add('/etc/odd', { kind: 'file', mode: 0o600, data: Buffer.from('12345') });
  b.add('/bin/sh', { kind: 'symlink', target: '/bin/busybox' });
  b.add('/usr/bin/tool', { kind: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') });
  assert.ok(a.equals(b.toBuffer()));
});

test('GNU cpio extracts the archive to the same files', (t) => {
  if (spawnSync('cpio', ['--version']).status !== 0) return t.skip('cpio is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'berth-cpio-'));
  try {
    const archive = new CpioArchive();
    archive.add('/usr/bin/tool', { kind: 'file', mode: 0o755, data: Buffer.from('payload') });
    archive.add('/bin/sh', { kind: 'symlink', target: '../usr/bin/tool' });
    archive.add('/a/b/c/empty', { kind: 'file', mode: 0o644, data: Buffer.alloc(0) });
    writeFileSync(join(dir, 'x.cpio'), archive.toBuffer());
    const result = spawnSync('sh', ['-c', 'mkdir out && cd out && cpio -idm --quiet < ../x.cpio'], {
      cwd: dir,
    });
    assert.equal(result.status, 0, result.stderr.toString());
    assert.equal(readFileSync(join(dir, 'out/usr/bin/tool'), 'utf8'), 'payload');
    assert.equal(statSync(join(dir, 'out/usr/bin/tool')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dir, 'out/bin/sh')), '../usr/bin/tool');
    assert.equal(statSync(join(dir, 'out/a/b/c/empty')).size, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a path cannot be added twice or escape the archive', () => {
  const archive = sample();
  assert.throws(
    () => archive.add('/etc/odd', { kind: 'file', mode: 0o644, data: Buffer.alloc(0) }),
    /added twice/,
  );
  assert.equal(archivePath('/../etc'), 'etc', 'a .. cannot climb above the archive root');
  assert.throws(() => archivePath('/'), /invalid path/);
  assert.equal(archivePath('/a//b/'), 'a/b');
});
