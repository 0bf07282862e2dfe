// Unix sockets: a 0600 listening socket, connect and accept, and fd passing with SCM_RIGHTS.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  close,
  eventfd,
  eventfdRead,
  eventfdWrite,
  isSystemCallError,
  memfdCreate,
  mmap,
  recvWithFds,
  sendWithFds,
  socketPair,
  unixAccept,
  unixConnect,
  unixListen,
} from '../../../core/native.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-native-'));
const fds: number[] = [];
after(() => {
  fds.splice(0).forEach((fd) => close(fd));
  rmSync(dir, { recursive: true, force: true });
});

function keep<T extends number | null>(fd: T): T {
  if (fd !== null) fds.push(fd);
  return fd;
}

function pair(): [number, number] {
  const [a, b] = socketPair();
  return [keep(a), keep(b)];
}

test('an fd sent through a socket pair maps the same memory', () => {
  const [a, b] = pair();
  const memfd = memfdCreate('berth-test-scm', 65536);
  const mine = mmap(memfd, 0, 65536, true);
  new Uint8Array(mine.buffer).set([10, 20, 30], 100);

  assert.equal(sendWithFds(a, Buffer.from('hello'), [memfd]), 5);
  close(memfd);
  const message = recvWithFds(b, 4096, 4);
  assert.ok(message);
  assert.equal(message.data.toString(), 'hello');
  assert.equal(message.fds.length, 1);
  const [received] = message.fds;
  assert.ok(received !== undefined);
  keep(received);

  const theirs = mmap(received, 0, 65536, true);
  assert.deepEqual([...new Uint8Array(theirs.buffer, 100, 3)], [10, 20, 30]);
  new Uint8Array(theirs.buffer)[0] = 77;
  assert.equal(new Uint8Array(mine.buffer)[0], 77);
  mine.unmap();
  theirs.unmap();
});

test('several fds travel in one message; plain data has none', () => {
  const [a, b] = pair();
  const events = [eventfd(0), eventfd(0)];
  assert.equal(sendWithFds(a, new Uint8Array([1, 2]), events), 2);
  assert.equal(sendWithFds(a, new Uint8Array([3]), []), 1);
  events.forEach((fd) => eventfdWrite(fd, 9));
  events.forEach((fd) => close(fd));
  const first = recvWithFds(b, 2, 8);
  assert.ok(first);
  assert.deepEqual([...first.data], [1, 2]);
  assert.equal(first.fds.length, 2);
  first.fds.forEach((fd) => assert.equal(eventfdRead(keep(fd)), 9));
  const second = recvWithFds(b, 100, 8);
  assert.deepEqual(second && { data: [...second.data], fds: second.fds }, { data: [3], fds: [] });
});

test('recvWithFds: null when nothing is waiting, empty data at end of stream', () => {
  const [a, b] = socketPair();
  keep(b);
  assert.equal(recvWithFds(b, 16, 1), null);
  close(a);
  const end = recvWithFds(b, 16, 1);
  assert.ok(end);
  assert.equal(end.data.length, 0);
  assert.deepEqual(end.fds, []);
});

test('more fds than maxFds: the ones that came are closed and recvWithFds throws', () => {
  const [a, b] = pair();
  const sent = [eventfd(0), eventfd(0), eventfd(0)];
  sendWithFds(a, Buffer.from('x'), sent);
  sent.forEach((fd) => close(fd));
  // The lowest free fd number: the kernel gives it to the first fd that arrives.
  const lowest = eventfd(0);
  close(lowest);
  assert.throws(() => recvWithFds(b, 16, 1), {
    code: 'ERR_FDS_TRUNCATED',
    syscall: 'recvmsg',
    message: /more than maxFds \(1\)/,
  });
  // That fd was closed again, so the number is free once more.
  const probe = eventfd(0);
  close(probe);
  assert.equal(probe, lowest);
});

test('a full socket makes sendWithFds throw EAGAIN', () => {
  const [a] = pair();
  const chunk = Buffer.alloc(65536);
  assert.throws(
    () => {
      for (let i = 0; i < 10000; i++) sendWithFds(a, chunk, []);
    },
    (error: unknown) => isSystemCallError(error, 'EAGAIN') && error.syscall === 'sendmsg',
  );
});

test('unixListen makes a 0600 socket even with umask 0; connect and accept work', () => {
  const path = join(dir, 'listen.sock');
  const oldMask = process.umask(0);
  let listener: number;
  try {
    listener = keep(unixListen(path, 8));
  } finally {
    process.umask(oldMask);
  }
  const stat = statSync(path);
  assert.ok(stat.isSocket());
  assert.equal(stat.mode & 0o777, 0o600);

  assert.equal(unixAccept(listener), null);
  const client = keep(unixConnect(path));
  const server = keep(unixAccept(listener));
  assert.ok(server !== null);
  assert.equal(unixAccept(listener), null);
  assert.equal(recvWithFds(client, 16, 0), null, 'the client socket is nonblocking');

  sendWithFds(client, Buffer.from('ping'), []);
  assert.equal(recvWithFds(server, 16, 0)?.data.toString(), 'ping');
  sendWithFds(server, Buffer.from('pong'), []);
  assert.equal(recvWithFds(client, 16, 0)?.data.toString(), 'pong');
});

test('socket errors carry code and syscall', () => {
  const path = join(dir, 'taken.sock');
  keep(unixListen(path, 1));
  assert.throws(
    () => unixListen(path, 1),
    (error: unknown) => isSystemCallError(error, 'EADDRINUSE') && error.syscall === 'bind',
  );
  assert.throws(
    () => unixConnect(join(dir, 'nobody.sock')),
    (error: unknown) => isSystemCallError(error, 'ENOENT') && error.syscall === 'connect',
  );
  const notSocket = keep(eventfd(0));
  assert.throws(
    () => recvWithFds(notSocket, 16, 0),
    (error: unknown) => isSystemCallError(error, 'ENOTSOCK'),
  );
});

test('socket functions check their arguments', () => {
  const [a] = pair();
  assert.throws(() => unixListen(join(dir, 'x'.repeat(120)), 1), {
    name: 'RangeError',
    message: /^path: must be at most 107 bytes/,
  });
  assert.throws(() => unixListen('', 1), { name: 'RangeError', message: /^path: / });
  assert.throws(() => unixListen(join(dir, 'b.sock'), -1), {
    name: 'RangeError',
    message: /^backlog: /,
  });
  assert.throws(() => recvWithFds(a, 0, 0), { name: 'RangeError', message: /^maxBytes: / });
  assert.throws(() => recvWithFds(a, 16, 254), { name: 'RangeError', message: /^maxFds: / });
  assert.throws(() => sendWithFds(a, new Uint8Array(0), []), {
    name: 'RangeError',
    message: /^data: must not be empty/,
  });
  assert.throws(() => sendWithFds(a, Buffer.from('x'), [-1]), {
    name: 'RangeError',
    message: /^fds: item 0/,
  });
  const untyped = sendWithFds as unknown as (...args: unknown[]) => number;
  assert.throws(() => untyped(a, 'text', []), { name: 'TypeError', message: /^data: / });
  assert.throws(() => untyped(a, new Uint16Array(2), []), { name: 'TypeError' });
  assert.throws(() => untyped(a, Buffer.from('x'), 3), { name: 'TypeError', message: /^fds: / });
});
