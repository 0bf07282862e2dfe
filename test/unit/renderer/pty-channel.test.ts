// The two terminal channels (renderer/src/terminal/pty-channel.ts) on the wire: the guest shell's
// session.* and the host's terminal.* calls, base64 both ways, large pastes split in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  WRITE_PIECE_BYTES,
  guestShellChannel,
  hostTerminalChannel,
} from '../../../renderer/src/terminal/pty-channel.ts';
import { FakeApi } from './fake-api.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

test('the guest shell opens a pty session and speaks session.*', async () => {
  const api = new FakeApi()
    .handle('session.open', () => ({ id: 7 }))
    .handle('session.write', () => ({}))
    .handle('session.resize', () => ({}))
    .handle('session.close', () => ({}));
  const channel = guestShellChannel(api);
  assert.equal(await channel.open({ cols: 100, rows: 30 }), 7);
  await channel.write(7, 'nproc\r');
  await channel.resize(7, { cols: 90, rows: 20 });
  await channel.close(7);
  assert.deepEqual(api.calls, [
    { method: 'session.open', params: { pty: { cols: 100, rows: 30, term: 'xterm-256color' } } },
    { method: 'session.write', params: { id: 7, data: b64('nproc\r') } },
    { method: 'session.resize', params: { id: 7, cols: 90, rows: 20 } },
    { method: 'session.close', params: { id: 7 } },
  ]);
});

test('guest output and exit are decoded and passed on with their id', () => {
  const api = new FakeApi();
  const channel = guestShellChannel(api);
  const got: [number, string][] = [];
  const exits: number[] = [];
  channel.onOutput((id, bytes) => got.push([id, Buffer.from(bytes).toString()]));
  channel.onExit((id) => exits.push(id));
  api.emit('session.output', { id: 7, stream: 'stdout', data: b64('Linux\r\n') });
  api.emit('session.exit', { id: 7, code: 0, signal: null });
  assert.deepEqual(got, [[7, 'Linux\r\n']]);
  assert.deepEqual(exits, [7]);
});

test('the host terminal speaks terminal.*', async () => {
  const api = new FakeApi()
    .handle('terminal.open', () => ({ id: 3 }))
    .handle('terminal.write', () => ({}));
  const channel = hostTerminalChannel(api);
  assert.equal(await channel.open({ cols: 80, rows: 24 }), 3);
  await channel.write(3, 'é');
  assert.deepEqual(api.calls, [
    { method: 'terminal.open', params: { cols: 80, rows: 24 } },
    { method: 'terminal.write', params: { id: 3, data: b64('é') } },
  ]);
  const got: string[] = [];
  channel.onOutput((_id, bytes) => got.push(Buffer.from(bytes).toString()));
  api.emit('terminal.output', { id: 3, data: b64('$ ') });
  assert.deepEqual(got, ['$ ']);
});

test('a large paste goes as several writes, in order, none over the piece size', async () => {
  const api = new FakeApi().handle('session.write', () => ({}));
  const text = 'x'.repeat(WRITE_PIECE_BYTES * 2 + 10);
  await guestShellChannel(api).write(1, text);
  const pieces = api.calls.map((c) => Buffer.from((c.params as { data: string }).data, 'base64'));
  assert.deepEqual(
    pieces.map((p) => p.length),
    [WRITE_PIECE_BYTES, WRITE_PIECE_BYTES, 10],
  );
  assert.equal(Buffer.concat(pieces).toString(), text);
});
