// The WebSocket adapter (renderer/src/api/socket-transport.ts) over a fake socket: waiting for
// open, text frames in, sends out, one close report (also to late listeners), nothing sent after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  socketTransport,
  whenOpen,
  type SocketEvent,
  type SocketLike,
} from '../../../renderer/src/api/socket-transport.ts';

class FakeSocket implements SocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  closedWith: [number | undefined, string | undefined] | null = null;
  private listeners = new Map<string, ((event: SocketEvent) => void)[]>();

  send(data: string): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
  }
  addEventListener(type: string, listener: (event: SocketEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  fire(type: string, event: SocketEvent = {}): void {
    if (type === 'open') this.readyState = 1;
    if (type === 'close') this.readyState = 3;
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

test('whenOpen resolves on open and rejects with the close code when it closes first', async () => {
  const good = new FakeSocket();
  const opened = whenOpen(good);
  good.fire('open');
  await opened;

  const bad = new FakeSocket();
  const refused = whenOpen(bad);
  bad.fire('close', { code: 1006 });
  await assert.rejects(refused, /close code 1006/);
});

test('text frames reach the listener; other frames are ignored; sends go out as text', () => {
  const socket = new FakeSocket();
  socket.fire('open');
  const transport = socketTransport(socket);
  const got: string[] = [];
  transport.onMessage((text) => got.push(text));
  socket.fire('message', { data: '{"a":1}' });
  socket.fire('message', { data: new ArrayBuffer(2) });
  transport.send('{"b":2}');
  assert.deepEqual(got, ['{"a":1}']);
  assert.deepEqual(socket.sent, ['{"b":2}']);
});

test('a close is reported once, to early and late listeners, and later sends are dropped', async () => {
  const socket = new FakeSocket();
  socket.fire('open');
  const transport = socketTransport(socket);
  const early: string[] = [];
  transport.onClose((why) => early.push(why.message));
  socket.fire('close', { code: 1001 });
  socket.fire('close', { code: 1001 });
  const late = await new Promise<string>((resolve) =>
    transport.onClose((why) => resolve(why.message)),
  );
  transport.send('x');
  assert.deepEqual(early, ['the connection closed (code 1001)']);
  assert.match(late, /1001/);
  assert.deepEqual(socket.sent, []);
});

test('close() closes the socket normally', () => {
  const socket = new FakeSocket();
  socket.fire('open');
  socketTransport(socket).close();
  assert.equal(socket.closedWith?.[0], 1000);
});
