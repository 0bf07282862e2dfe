// A terminal's session (renderer/src/terminal/pty-session.ts) with a fake terminal and channel:
// opening at the terminal's size, bytes both ways for its own id only, the ended note and
// reconnect on Enter, "unavailable" for a host without the method, and cleanup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, ErrorCode } from '../../../core/api/errors.ts';
import type { PtySize } from '../../../core/api/types.ts';
import type { PtyChannel } from '../../../renderer/src/terminal/pty-channel.ts';
import {
  PtySession,
  SESSION_ENDED,
  type TerminalLike,
} from '../../../renderer/src/terminal/pty-session.ts';
import { settle } from './fake-api.ts';

class FakeTerminal implements TerminalLike {
  cols = 80;
  rows = 24;
  readonly written: (string | Uint8Array)[] = [];
  private listener: ((data: string) => void) | null = null;
  write(data: string | Uint8Array): void {
    this.written.push(data);
  }
  onData(listener: (data: string) => void) {
    this.listener = listener;
    return { dispose: () => (this.listener = null) };
  }
  type(text: string): void {
    this.listener?.(text);
  }
  get text(): string {
    return this.written
      .map((w) => (typeof w === 'string' ? w : new TextDecoder().decode(w)))
      .join('');
  }
}

class FakeChannel implements PtyChannel {
  nextId = 1;
  opened: PtySize[] = [];
  writes: [number, string][] = [];
  resizes: [number, PtySize][] = [];
  closed: number[] = [];
  failOpen: Error | null = null;
  private outputs = new Set<(id: number, bytes: Uint8Array) => void>();
  private exits = new Set<(id: number) => void>();
  async open(size: PtySize) {
    this.opened.push(size);
    if (this.failOpen) throw this.failOpen;
    return this.nextId++;
  }
  async write(id: number, text: string) {
    this.writes.push([id, text]);
  }
  async resize(id: number, size: PtySize) {
    this.resizes.push([id, size]);
  }
  async close(id: number) {
    this.closed.push(id);
  }
  onOutput(listener: (id: number, bytes: Uint8Array) => void) {
    this.outputs.add(listener);
    return () => this.outputs.delete(listener);
  }
  onExit(listener: (id: number) => void) {
    this.exits.add(listener);
    return () => this.exits.delete(listener);
  }
  output(id: number, text: string) {
    for (const l of this.outputs) l(id, new TextEncoder().encode(text));
  }
  exit(id: number) {
    for (const l of this.exits) l(id);
  }
  get listeners() {
    return this.outputs.size + this.exits.size;
  }
}

function setup() {
  const term = new FakeTerminal();
  const channel = new FakeChannel();
  const session = new PtySession(term, channel);
  const states: string[] = [];
  session.onState((s) => states.push(s));
  return { term, channel, session, states };
}

test('opens at the terminal’s size; typing and output flow for its id only', async () => {
  const { term, channel, session, states } = setup();
  await session.open();
  assert.deepEqual(channel.opened, [{ cols: 80, rows: 24 }]);
  assert.deepEqual(states, ['opening', 'open']);
  term.type('uname -a\r');
  assert.deepEqual(channel.writes, [[1, 'uname -a\r']]);
  channel.output(1, 'Linux berth 6.12\r\n');
  channel.output(99, 'someone else’s output');
  assert.equal(term.text, 'Linux berth 6.12\r\n');
});

test('opening twice opens one session', async () => {
  const { channel, session } = setup();
  await Promise.all([session.open(), session.open()]);
  await session.open();
  assert.equal(channel.opened.length, 1);
});

test('output that races ahead of the open answer is kept for the new session', async () => {
  const { term, channel, session } = setup();
  const opening = session.open();
  channel.output(1, 'early prompt$ ');
  await opening;
  assert.equal(term.text, 'early prompt$ ');
});

test('keys typed while the session opens are sent, in order, once it is open', async () => {
  const { term, channel, session } = setup();
  const opening = session.open();
  term.type('uname');
  term.type(' -a\r');
  assert.deepEqual(channel.writes, []);
  await opening;
  assert.deepEqual(channel.writes, [
    [1, 'uname'],
    [1, ' -a\r'],
  ]);
});

test('an exit ends the session with a note; Enter opens a new one', async () => {
  const { term, channel, session } = setup();
  await session.open();
  channel.exit(1);
  assert.equal(session.state, 'ended');
  assert.ok(term.text.includes(SESSION_ENDED));
  term.type('x');
  assert.equal(channel.opened.length, 1, 'only Enter reconnects');
  term.type('\r');
  await settle();
  assert.equal(session.state, 'open');
  assert.equal(channel.opened.length, 2);
  term.type('ls\r');
  assert.deepEqual(channel.writes.at(-1), [2, 'ls\r']);
});

test('end() closes the session, notes why once, and ignores the late exit', async () => {
  const { term, channel, session } = setup();
  await session.open();
  session.end('[the VM is stopping]');
  session.end('[the VM is stopping]');
  channel.exit(1);
  assert.deepEqual(channel.closed, [1]);
  assert.equal(term.text.split('[the VM is stopping]').length - 1, 1);
  assert.ok(!term.text.includes(SESSION_ENDED));
});

test('a resize goes to the open session; one during opening is sent after it opens', async () => {
  const { term, channel, session } = setup();
  session.resize({ cols: 100, rows: 30 });
  assert.deepEqual(channel.resizes, [], 'nothing to resize yet');
  const opening = session.open();
  term.cols = 120;
  term.rows = 40;
  await opening;
  assert.deepEqual(channel.resizes, [[1, { cols: 120, rows: 40 }]]);
});

test('"method not found" makes the session unavailable; other failures offer a retry', async () => {
  const host = setup();
  host.channel.failOpen = new ApiError(ErrorCode.methodNotFound, 'not served here');
  await host.session.open();
  assert.equal(host.session.state, 'unavailable');
  assert.equal(host.term.text, '');

  const guest = setup();
  guest.channel.failOpen = new ApiError(ErrorCode.wrongState, 'the VM is not running');
  await guest.session.open();
  assert.equal(guest.session.state, 'ended');
  assert.match(guest.term.text, /could not open a session: the VM is not running/);
  assert.match(guest.term.text, /press Enter to try again/);
});

test('a session ended while opening is closed when the open answers', async () => {
  const { channel, session } = setup();
  const opening = session.open();
  session.end('[disconnected]');
  await opening;
  await settle();
  assert.deepEqual(channel.closed, [1]);
  assert.equal(session.state, 'ended');
});

test('dispose closes the session and drops every listener', async () => {
  const { term, channel, session } = setup();
  await session.open();
  session.dispose();
  assert.deepEqual(channel.closed, [1]);
  assert.equal(channel.listeners, 0);
  term.type('x');
  assert.deepEqual(channel.writes, []);
});
