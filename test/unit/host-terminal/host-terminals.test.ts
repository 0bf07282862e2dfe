// HostTerminals with real ptys: a shell on this machine, driven as the dashboard drives it
// (base64 in and out), its size, its exit code, the per-client cap, hang-up on close, and pausing
// while the client's transport is full.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiError } from '../../../core/api/errors.ts';
import type { TerminalExit } from '../../../core/api/types.ts';
import {
  HostTerminals,
  MAX_TERMINALS_PER_CLIENT,
  type TerminalFlow,
} from '../../../core/host-terminal/host-terminals.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A client's view: output per terminal as text, exits, and a way to wait for either. */
class Recorder {
  readonly output = new Map<number, string>();
  readonly exits: TerminalExit[] = [];
  private readonly waiters = new Set<() => void>();

  readonly sink = {
    output: ({ id, data }: { id: number; data: string }) => {
      this.output.set(id, (this.output.get(id) ?? '') + Buffer.from(data, 'base64').toString());
      this.wake();
    },
    exit: (event: TerminalExit) => {
      this.exits.push(event);
      this.wake();
    },
  };

  text(id: number): string {
    return this.output.get(id) ?? '';
  }

  async until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        setTimeout(wake, 50);
      });
    }
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

function withTerminals(
  run: (t: { terminals: HostTerminals; rec: Recorder; home: string }) => Promise<void>,
  flow: TerminalFlow | null = null,
  maxPerClient?: number,
): () => Promise<void> {
  return async () => {
    const home = realpathSync(mkdtempSync(join(tmpdir(), 'berth-term-')));
    const rec = new Recorder();
    // A plain sh with a known environment, so no profile of this machine's user gets in the way.
    const terminals = new HostTerminals(rec.sink, flow, {
      env: { SHELL: '/bin/sh', HOME: home, PATH: process.env.PATH, npm_config_x: 'y', PS1: '$ ' },
      ...(maxPerClient ? { maxPerClient } : {}),
    });
    try {
      await run({ terminals, rec, home });
    } finally {
      terminals.closeAll();
      rmSync(home, { recursive: true, force: true });
    }
  };
}

test(
  'a shell runs what is typed: echo hi-$((6*7)) prints hi-42',
  withTerminals(async ({ terminals, rec }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    assert.equal(id, 1);
    terminals.write({ id, data: b64('echo hi-$((6*7))\r') });
    await rec.until('hi-42', () => rec.text(id).includes('hi-42'));
  }),
);

test(
  'the shell starts in $HOME with TERM=xterm-256color, without npm variables',
  withTerminals(async ({ terminals, rec, home }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    terminals.write({ id, data: b64('echo "[$TERM|$PWD|${npm_config_x:-none}|$0]"\r') });
    await rec.until('the echo', () => /\[xterm-256color\|/.test(rec.text(id)));
    assert.match(rec.text(id), new RegExp(`\\[xterm-256color\\|${home}\\|none\\|(/bin/)?sh\\]`));
  }),
);

test(
  'resize changes the size the shell sees',
  withTerminals(async ({ terminals, rec }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    terminals.write({ id, data: b64('stty size\r') });
    await rec.until('24 80', () => rec.text(id).includes('24 80'));
    assert.deepEqual(terminals.resize({ id, cols: 132, rows: 43 }), {});
    terminals.write({ id, data: b64('stty size\r') });
    await rec.until('43 132', () => rec.text(id).includes('43 132'));
  }),
);

test(
  'exit: terminal.exit carries the code, and the id is gone afterwards',
  withTerminals(async ({ terminals, rec }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    terminals.write({ id, data: b64('exit 7\r') });
    await rec.until('the exit', () => rec.exits.length > 0);
    assert.deepEqual(rec.exits, [{ id, code: 7 }]);
    assert.equal(terminals.count, 0);
    assert.throws(
      () => terminals.write({ id, data: b64('x') }),
      (error: unknown) =>
        error instanceof ApiError && error.code === 5 && /no host terminal 1/.test(error.message),
    );
  }),
);

test(
  'close hangs the shell up: an exit without a code (killed by SIGHUP)',
  withTerminals(async ({ terminals, rec }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    terminals.write({ id, data: b64('echo ready\r') });
    await rec.until('ready', () => rec.text(id).includes('ready'));
    assert.deepEqual(terminals.close({ id }), {});
    await rec.until('the exit', () => rec.exits.length > 0);
    assert.deepEqual(rec.exits, [{ id, code: null }]);
  }),
);

test(
  'a client may hold at most its cap of terminals; closeAll ends them silently and refuses more',
  withTerminals(
    async ({ terminals, rec }) => {
      const a = await terminals.open({ cols: 80, rows: 24 });
      const b = await terminals.open({ cols: 80, rows: 24 });
      assert.deepEqual([a.id, b.id], [1, 2]);
      await assert.rejects(
        terminals.open({ cols: 80, rows: 24 }),
        (error: unknown) =>
          error instanceof ApiError && error.code === 5 && /already has 2/.test(error.message),
      );
      terminals.closeAll();
      assert.equal(terminals.count, 0);
      await assert.rejects(terminals.open({ cols: 80, rows: 24 }), /went away/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(rec.exits, [], 'nobody is told after the client went away');
    },
    null,
    2,
  ),
);

test('the default cap is 8 terminals per client', () => {
  assert.equal(MAX_TERMINALS_PER_CLIENT, 8);
});

test('a shell that cannot be started is a session error naming it', async () => {
  const terminals = new HostTerminals(new Recorder().sink, null, {
    shell: '/nonexistent/shell',
    env: { HOME: tmpdir() },
  });
  await assert.rejects(
    terminals.open({ cols: 80, rows: 24 }),
    (error: unknown) =>
      error instanceof ApiError &&
      error.code === 5 &&
      /cannot start the shell \/nonexistent\/shell/.test(error.message),
  );
  assert.equal(terminals.count, 0);
});

test('while the client cannot take more output the pty is paused, and resumed on drain', async () => {
  let writable = false;
  const drains: (() => void)[] = [];
  const flow: TerminalFlow = {
    get writable() {
      return writable;
    },
    onDrain: (listener) => void drains.push(listener),
  };
  await withTerminals(async ({ terminals, rec }) => {
    const { id } = await terminals.open({ cols: 80, rows: 24 });
    terminals.write({ id, data: b64('sleep 0.3; echo late-$((40+2))\r') });
    await rec.until('some output', () => rec.text(id).length > 0);
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.doesNotMatch(rec.text(id), /late-42/, 'paused: nothing more was read');
    writable = true;
    for (const drain of drains) drain();
    await rec.until('late-42 after the drain', () => rec.text(id).includes('late-42'));
  }, flow)();
});
