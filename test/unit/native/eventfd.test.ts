// eventfd and FdWatcher: the counter, EAGAIN, and a watcher on the event loop that stops cleanly.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  FdWatcher,
  close,
  eventfd,
  eventfdRead,
  eventfdWrite,
  isSystemCallError,
} from '../../../core/native.ts';

const fds: number[] = [];
after(() => fds.splice(0).forEach((fd) => close(fd)));

function newEventfd(initval = 0, semaphore?: boolean): number {
  const fd = eventfd(initval, semaphore);
  fds.push(fd);
  return fd;
}

test('eventfd counts writes; a read takes the count; an empty read is null', () => {
  const fd = newEventfd();
  assert.equal(eventfdRead(fd), null);
  eventfdWrite(fd);
  eventfdWrite(fd, 41);
  assert.equal(eventfdRead(fd), 42);
  assert.equal(eventfdRead(fd), null);
  eventfdWrite(fd, 2 ** 53 - 1);
  assert.equal(eventfdRead(fd), 2 ** 53 - 1);
});

test('eventfd starts at initval; in semaphore mode each read takes 1', () => {
  const fd = newEventfd(2, true);
  assert.equal(eventfdRead(fd), 1);
  assert.equal(eventfdRead(fd), 1);
  assert.equal(eventfdRead(fd), null);
});

test('a write that would overflow the counter throws EAGAIN', () => {
  const fd = newEventfd();
  // The counter holds at most 2^64 - 2: fill it in steps a number can express exactly.
  const step = 2 ** 53 - 1;
  assert.throws(
    () => {
      for (let i = 0; i < 3000; i++) eventfdWrite(fd, step);
    },
    (error: unknown) => isSystemCallError(error, 'EAGAIN') && error.syscall === 'write',
  );
});

test('eventfd functions check their arguments', () => {
  assert.throws(() => eventfd(-1), { name: 'RangeError', message: /^initval: / });
  assert.throws(() => eventfd(2 ** 32), { name: 'RangeError', message: /^initval: / });
  const untyped = eventfd as unknown as (...args: unknown[]) => number;
  assert.throws(() => untyped(0, 'yes'), { name: 'TypeError', message: /^semaphore: / });
  const fd = newEventfd();
  assert.throws(() => eventfdWrite(fd, 0), { name: 'RangeError', message: /^value: / });
  assert.throws(() => eventfdWrite(fd, 2 ** 53), { name: 'RangeError', message: /^value: / });
  assert.throws(() => eventfdRead(-5), { name: 'RangeError', message: /^fd: / });
});

test('FdWatcher calls back when an eventfd is written, and not after stop()', async () => {
  const fd = newEventfd();
  const values: number[] = [];
  let wake: () => void = () => {};
  const watcher = new FdWatcher(fd, () => {
    values.push(eventfdRead(fd) ?? -1);
    wake();
  });
  assert.ok(watcher instanceof FdWatcher);
  assert.equal(watcher.active, true);
  assert.equal(watcher.fd, fd);
  for (const value of [3, 4]) {
    const called = new Promise<void>((resolve) => (wake = resolve));
    eventfdWrite(fd, value);
    await called;
  }
  assert.deepEqual(values, [3, 4]);
  watcher.stop();
  watcher.stop();
  assert.equal(watcher.active, false);
  eventfdWrite(fd, 5);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(values, [3, 4]);
  assert.equal(eventfdRead(fd), 5);
});

test('FdWatcher may be stopped from its callback and its fd closed right after', async () => {
  const fd = eventfd(1);
  await new Promise<void>((resolve) => {
    const watcher = new FdWatcher(fd, () => {
      watcher.stop();
      close(fd);
      resolve();
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
});

test('ref() and unref() return the watcher and do nothing once stopped', () => {
  const fd = newEventfd();
  const watcher = new FdWatcher(fd, () => {});
  assert.equal(watcher.unref(), watcher);
  assert.equal(watcher.ref(), watcher);
  watcher.stop();
  assert.equal(watcher.unref(), watcher);
});

test('FdWatcher errors: a closed fd, a second watcher on one fd, bad arguments', () => {
  const closed = eventfd(0);
  close(closed);
  assert.throws(
    () => new FdWatcher(closed, () => {}),
    (error: unknown) => isSystemCallError(error, 'EBADF') && error.syscall === 'uv_poll_init',
  );
  const fd = newEventfd();
  const first = new FdWatcher(fd, () => {});
  assert.throws(
    () => new FdWatcher(fd, () => {}),
    (error: unknown) => isSystemCallError(error, 'EEXIST'),
  );
  first.stop();
  new FdWatcher(fd, () => {}).stop();
  const Untyped = FdWatcher as unknown as new (...args: unknown[]) => unknown;
  assert.throws(() => new Untyped(fd), { name: 'TypeError', message: /^onReadable: / });
  assert.throws(() => new Untyped(-1, () => {}), { name: 'RangeError', message: /^fd: / });
});
