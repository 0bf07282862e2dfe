// memfdCreate and mmap: shared mappings, unmap detaching the buffer, GC unmapping, the errors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  close,
  isSystemCallError,
  memfdCreate,
  mmap,
  mmapAnonymous,
} from '../../../core/native.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;
const fds: number[] = [];
after(() => fds.splice(0).forEach((fd) => close(fd)));

function memfd(name: string, size: number): number {
  const fd = memfdCreate(name, size);
  fds.push(fd);
  return fd;
}

/** How many lines of /proc/self/maps name the memfd. */
function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`/memfd:${name} `)).length;
}

test('two mappings of one memfd see each other’s writes', () => {
  const fd = memfd('berth-test-shared', MiB);
  const a = mmap(fd, 0, MiB, true);
  const b = mmap(fd, 0, MiB, true);
  assert.equal(a.buffer.byteLength, MiB);
  assert.equal(a.length, MiB);
  assert.equal(a.writable, true);
  assert.equal(a.mapped, true);
  const viewA = new Uint8Array(a.buffer);
  const viewB = new Uint8Array(b.buffer);
  viewA[12345] = 0xab;
  viewB.set([1, 2, 3], MiB - 3);
  assert.equal(viewB[12345], 0xab);
  assert.deepEqual([...viewA.subarray(MiB - 3)], [1, 2, 3]);
  a.unmap();
  b.unmap();
});

test('a mapping at an offset sees the file from that offset', () => {
  const fd = memfd('berth-test-offset', 4 * 4096);
  const whole = mmap(fd, 0, 4 * 4096, true);
  const window = mmap(fd, 2 * 4096, 4096, false);
  new Uint8Array(whole.buffer)[2 * 4096 + 7] = 99;
  assert.equal(window.writable, false);
  assert.equal(new Uint8Array(window.buffer)[7], 99);
  whole.unmap();
  window.unmap();
});

test('unmap detaches the buffer and unmaps; a second unmap does nothing', () => {
  const fd = memfd('berth-test-unmap', 65536);
  const region = mmap(fd, 0, 65536, true);
  const view = new Uint8Array(region.buffer);
  view[0] = 1;
  assert.equal(mappingsOf('berth-test-unmap'), 1);
  region.unmap();
  assert.equal(region.mapped, false);
  assert.equal(region.buffer.byteLength, 0);
  assert.equal(view.length, 0);
  assert.equal(view[0], undefined);
  assert.throws(() => new Uint8Array(region.buffer, 0, 1), TypeError);
  assert.equal(mappingsOf('berth-test-unmap'), 0);
  region.unmap();
  assert.equal(region.length, 65536);
});

test('a region that is never unmapped is unmapped when collected', async () => {
  const fd = memfd('berth-test-gc', 65536);
  (() => {
    new Uint8Array(mmap(fd, 0, 65536, true).buffer)[0] = 1;
  })();
  assert.equal(mappingsOf('berth-test-gc'), 1);
  for (let i = 0; i < 10 && mappingsOf('berth-test-gc') > 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(mappingsOf('berth-test-gc'), 0);
});

test('the buffer keeps the mapping alive after its region is collected', async () => {
  const fd = memfd('berth-test-keep', 65536);
  const buffer = (() => mmap(fd, 0, 65536, true).buffer)();
  gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
  gc();
  assert.equal(mappingsOf('berth-test-keep'), 1);
  new Uint8Array(buffer)[65535] = 7;
  assert.equal(new Uint8Array(buffer)[65535], 7);
});

test('a 4 GiB mapping works; a longer one throws a RangeError that says what to do', () => {
  const fd = memfd('berth-test-big', 5 * 1024 * MiB); // sparse: no memory is used
  const region = mmap(fd, 0, 4 * 1024 * MiB, true);
  assert.equal(region.buffer.byteLength, 4 * 1024 * MiB);
  new Uint8Array(region.buffer, 4 * 1024 * MiB - 4096)[4095] = 5;
  region.unmap();
  assert.throws(() => mmap(fd, 0, 5 * 1024 * MiB, true), {
    name: 'RangeError',
    code: 'ERR_OUT_OF_RANGE',
    message: /^length: 5368709120 bytes is more than .* map the region in windows/,
  });
  assert.equal(mappingsOf('berth-test-big'), 0);
  const window = mmap(fd, 4 * 1024 * MiB, 1024 * MiB, true);
  assert.equal(new Uint8Array(window.buffer)[0], 0);
  window.unmap();
});

test('mmap of a closed fd throws EBADF with code, errno and syscall', () => {
  const fd = memfdCreate('berth-test-closed', 4096);
  close(fd);
  assert.throws(
    () => mmap(fd, 0, 4096, true),
    (error: unknown) => {
      assert.ok(isSystemCallError(error, 'EBADF'));
      assert.equal(error.message, 'mmap: EBADF (Bad file descriptor)');
      assert.equal(error.errno, 9);
      assert.equal(error.syscall, 'mmap');
      return true;
    },
  );
});

test('mmap checks its arguments and names the one that is wrong', () => {
  const fd = memfd('berth-test-args', 8192);
  const cases: [args: unknown[], name: string, message: RegExp][] = [
    [[-1, 0, 4096, true], 'RangeError', /^fd: must be a file descriptor/],
    [[1.5, 0, 4096, true], 'RangeError', /^fd: /],
    [['3', 0, 4096, true], 'TypeError', /^fd: expected a file descriptor/],
    [[fd, 100, 4096, true], 'RangeError', /^offset: must be a multiple of the page size/],
    [[fd, -4096, 4096, true], 'RangeError', /^offset: /],
    [[fd, 0, 0, true], 'RangeError', /^length: must be in \[1, /],
    [[fd, 0, Number.NaN, true], 'RangeError', /^length: must be an integer/],
    [[fd, 4096, 8192, true], 'RangeError', /^length: offset \+ length \(12288\) is past the end/],
    [[fd, 0, 4096], 'TypeError', /^writable: expected a boolean/],
    [[fd, 0, 4096, 1], 'TypeError', /^writable: /],
  ];
  const untyped = mmap as unknown as (...args: unknown[]) => unknown;
  for (const [args, name, message] of cases) {
    assert.throws(() => untyped(...args), { name, message }, JSON.stringify(args));
  }
});

test('memfdCreate checks its arguments', () => {
  assert.throws(() => memfdCreate('x'.repeat(250), 0), {
    name: 'RangeError',
    message: /^name: must be at most 249 bytes/,
  });
  assert.throws(() => memfdCreate('a\0b', 0), { name: 'RangeError', message: /^name: .*NUL/ });
  assert.throws(() => memfdCreate('x', -1), { name: 'RangeError', message: /^size: / });
  const untyped = memfdCreate as unknown as (...args: unknown[]) => number;
  assert.throws(() => untyped(1, 0), { name: 'TypeError', message: /^name: expected a string/ });
  assert.throws(() => untyped('x', 1n), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
});

test('a region cannot be constructed directly', () => {
  const fd = memfd('berth-test-ctor', 4096);
  const region = mmap(fd, 0, 4096, false);
  const Region = region.constructor as new () => unknown;
  assert.throws(() => new Region(), { name: 'TypeError', message: /created by mmap\(\)/ });
  region.unmap();
});

/** THP's mode on this kernel ("always", "madvise" or "never"), from the bracketed choice. */
function thpMode(): string {
  try {
    const text = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    return /\[(\w+)\]/.exec(text)?.[1] ?? 'never';
  } catch {
    return 'never';
  }
}

/** One mapping's smaps block, found by its start address. */
function smapsAt(address: number): string {
  const blocks = readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  return blocks.find((block) => Number.parseInt(block.split('-')[0]!, 16) === address) ?? '';
}

test(
  'anonymous guest RAM, touched, lands in transparent huge pages',
  { skip: thpMode() === 'never' ? 'transparent huge pages are off on this kernel' : false },
  () => {
    const length = 8 << 20;
    const region = mmapAnonymous(length, 'berth-test-thp');
    try {
      assert.equal(region.length, length);
      new Uint8Array(region.buffer).fill(0xa5);
      const smaps = smapsAt(region.address);
      assert.ok(smaps, 'the mapping is in /proc/self/smaps');
      const huge = Number(/^AnonHugePages:\s+(\d+) kB/m.exec(smaps)?.[1] ?? 0);
      assert.ok(huge >= 2048, `AnonHugePages ${huge} kB of 8192 kB touched`);
    } finally {
      region.unmap();
    }
    assert.equal(smapsAt(region.address), '', 'unmapped');
  },
);
