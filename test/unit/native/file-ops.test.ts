// fallocate and close.
import assert from 'node:assert/strict';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  close,
  eventfd,
  fallocate,
  isSystemCallError,
  memfdCreate,
  mmap,
} from '../../../core/native.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'berth-native-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A 3 MiB file whose every byte is 0xab, written to disk. */
function filledFile(name: string): number {
  const fd = openSync(join(dir, name), 'w+');
  writeSync(fd, Buffer.alloc(3 * MiB, 0xab), 0, 3 * MiB, 0);
  fsyncSync(fd);
  return fd;
}

function readRange(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  assert.equal(readSync(fd, buffer, 0, length, offset), length);
  return buffer;
}

test('punch-hole makes a 1 MiB range read as zeros and frees its blocks', () => {
  const fd = filledFile('punch.img');
  try {
    const before = fstatSync(fd);
    fallocate(fd, 'punch-hole', MiB, MiB);
    const afterPunch = fstatSync(fd);
    assert.equal(afterPunch.size, 3 * MiB, 'the size is kept');
    assert.ok(
      afterPunch.blocks <= before.blocks - MiB / 512,
      `st_blocks ${before.blocks} -> ${afterPunch.blocks}`,
    );
    assert.ok(readRange(fd, MiB, MiB).equals(Buffer.alloc(MiB)));
    assert.ok(readRange(fd, 0, MiB).equals(Buffer.alloc(MiB, 0xab)));
    assert.ok(readRange(fd, 2 * MiB, MiB).equals(Buffer.alloc(MiB, 0xab)));
  } finally {
    closeSync(fd);
  }
});

test('zero-range zeroes a range and keeps the size', () => {
  const fd = filledFile('zero.img');
  try {
    fallocate(fd, 'zero-range', 4096, 8192);
    assert.equal(fstatSync(fd).size, 3 * MiB);
    const bytes = readRange(fd, 0, 16384);
    assert.ok(bytes.subarray(0, 4096).equals(Buffer.alloc(4096, 0xab)));
    assert.ok(bytes.subarray(4096, 12288).equals(Buffer.alloc(8192)));
    assert.ok(bytes.subarray(12288).equals(Buffer.alloc(4096, 0xab)));
  } finally {
    closeSync(fd);
  }
});

test('punch-hole on a memfd frees guest memory: a mapping reads zeros there', () => {
  const fd = memfdCreate('berth-test-punch', 4 * 4096);
  const region = mmap(fd, 0, 4 * 4096, true);
  new Uint8Array(region.buffer).fill(0xcd);
  fallocate(fd, 'punch-hole', 4096, 2 * 4096);
  const view = new Uint8Array(region.buffer);
  assert.deepEqual(
    [view[4095], view[4096], view[3 * 4096 - 1], view[3 * 4096]],
    [0xcd, 0, 0, 0xcd],
  );
  region.unmap();
  close(fd);
});

test('fallocate errors: bad mode, bad range, an fd that cannot', () => {
  const fd = eventfd(0);
  try {
    const untyped = fallocate as unknown as (...args: unknown[]) => void;
    assert.throws(() => untyped(fd, 'discard', 0, 1), {
      name: 'RangeError',
      message: "mode: must be 'punch-hole' or 'zero-range', got 'discard'",
    });
    assert.throws(() => untyped(fd, 1, 0, 1), { name: 'TypeError', message: /^mode: / });
    assert.throws(() => fallocate(fd, 'punch-hole', -1, 1), {
      name: 'RangeError',
      message: /^offset: /,
    });
    assert.throws(() => fallocate(fd, 'punch-hole', 0, 0), {
      name: 'RangeError',
      message: /^length: /,
    });
    assert.throws(
      () => fallocate(fd, 'punch-hole', 0, 4096),
      (error: unknown) => isSystemCallError(error) && error.syscall === 'fallocate',
    );
  } finally {
    close(fd);
  }
});

test('close of a closed fd throws EBADF', () => {
  const fd = eventfd(0);
  close(fd);
  assert.throws(
    () => close(fd),
    (error: unknown) =>
      isSystemCallError(error, 'EBADF') && error.errno === 9 && error.syscall === 'close',
  );
});
