// run/debug-shell.sock on a real VM (qemu backend, our devices): a socat session runs commands,
// concurrent sessions are separate shells, the socket is 0600, GuestConnection shares one SSH
// connection and reconnects after a VM restart; keystroke echo latency is printed (not asserted).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataDisk, GiB } from '../../core/disk/data-disk.ts';
import { DebugShellServer } from '../../core/guest/debug-shell-server.ts';
import { measureEchoLatency } from '../../core/guest/echo-latency.ts';
import { GuestConnection } from '../../core/guest/guest-connection.ts';
import { authorizedKeyArgument, loadOrCreateSshKey } from '../../core/guest/ssh-keys.ts';
import { buildPaths } from '../../core/paths.ts';
import { VmLifecycle } from '../../core/supervisor/lifecycle.ts';
import { QemuVmRunner } from '../../core/supervisor/qemu-runner.ts';

const TEST_DEADLINE_MS = 180_000;
const WAIT_MS = 30_000;
/** The root prompt; ash follows it with a cursor position query (ESC [6n), which may be there. */
const PROMPT = /# (?:.\[6n)?$/;

const work = mkdtempSync(join(tmpdir(), 'berth-debug-shell-'));
const runDir = join(work, 'run');
const vsockPath = join(runDir, 'vsock.sock');
const shellPath = join(runDir, 'debug-shell.sock');
const serialLog = join(work, 'serial.log');
const disk = new DataDisk(join(work, 'data.img'));
disk.create(2 * GiB);
const key = loadOrCreateSshKey(join(work, 'ssh'));
const lifecycle = new VmLifecycle({
  runner: new QemuVmRunner({
    imageDir: buildPaths.image,
    dataDisk: disk.path,
    runDir,
    serialLog,
    cpus: 2,
    memoryMiB: 1024,
    kernelArgs: [authorizedKeyArgument(key)],
  }),
});
const connection = new GuestConnection(vsockPath, key);
let server: DebugShellServer | undefined;

before(async () => {
  await lifecycle.start();
  server = await DebugShellServer.listen(shellPath, () => connection.ssh());
});

after(async () => {
  await server?.close();
  connection.close();
  await lifecycle.stop({ deadlineMs: 5000 }).catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

/** A failing test shows what the guest's console said last. */
function withSerialTail(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (error) {
      let tail = '(no serial log)';
      try {
        tail = readFileSync(serialLog, 'utf8').split('\n').slice(-40).join('\n');
      } catch {
        // keep the placeholder
      }
      console.error(`--- serial log tail ---\n${tail}\n---`);
      throw error;
    }
  };
}

/** Everything a stream printed, with a wait for a pattern in it. */
class Output {
  text = '';
  private waiters = new Set<() => void>();

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (data: Buffer) => {
      this.text += data.toString();
      for (const wake of this.waiters) wake();
    });
  }

  async waitFor(pattern: RegExp, what: string, timeoutMs = WAIT_MS): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.text);
      if (match) return match;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.text)}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }
}

function connectShell(path = shellPath): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test(
  'a socat session runs a command and exits',
  { timeout: TEST_DEADLINE_MS },
  withSerialTail(async () => {
    const socat = spawn('/usr/bin/socat', ['-', `UNIX-CONNECT:${shellPath}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => socat.once('exit', resolve));
    const out = new Output(socat.stdout);
    const err = new Output(socat.stderr);
    try {
      await out.waitFor(PROMPT, 'shell prompt');
      // $((6*7)) is computed by the shell, so the echoed command line cannot match hi-42.
      socat.stdin.write('echo hi-$((6*7))\n');
      await out.waitFor(/hi-42/, 'command output');
      socat.stdin.write('exit\n');
      assert.equal(await exited, 0, `socat: ${err.text}`);
    } finally {
      socat.kill();
    }
    await until(() => server!.sessions === 0, 'the session ending');
  }),
);

test(
  'two sessions at once are separate shells',
  { timeout: TEST_DEADLINE_MS },
  withSerialTail(async () => {
    const sockets = await Promise.all([connectShell(), connectShell()]);
    try {
      const outputs = sockets.map((socket) => new Output(socket));
      await Promise.all(outputs.map((out) => out.waitFor(PROMPT, 'shell prompt')));
      assert.equal(server!.sessions, 2);
      for (const socket of sockets) socket.write('echo "pid=$$."\n');
      const pids = await Promise.all(
        outputs.map(async (out) => (await out.waitFor(/pid=(\d+)\./, 'the shell pid'))[1]),
      );
      assert.notEqual(pids[0], pids[1], `both sessions ran in shell ${pids[0]}`);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await until(() => server!.sessions === 0, 'both sessions ending');
  }),
);

test(
  'the socket is 0600, a live one is not taken over, and a failed shell says why',
  { timeout: TEST_DEADLINE_MS },
  withSerialTail(async () => {
    assert.equal(statSync(shellPath).mode & 0o777, 0o600);
    await assert.rejects(
      DebugShellServer.listen(shellPath, () => connection.ssh()),
      /another process is listening/,
    );

    const brokenPath = join(runDir, 'broken-shell.sock');
    const broken = await DebugShellServer.listen(brokenPath, () =>
      Promise.reject(new Error('the VM is not running')),
    );
    try {
      const socket = await connectShell(brokenPath);
      const out = new Output(socket);
      await new Promise((resolve) => socket.once('close', resolve));
      assert.equal(out.text, 'berth: cannot open a shell in the VM: the VM is not running\r\n');
    } finally {
      await broken.close();
    }
    assert.throws(() => statSync(brokenPath), /ENOENT/);
  }),
);

test(
  'keystroke echo latency through the debug shell (printed, not asserted)',
  { timeout: TEST_DEADLINE_MS },
  withSerialTail(async () => {
    const socket = await connectShell();
    try {
      const viaSocket = await measureEchoLatency(socket, 200);
      console.log(
        `debug-shell.sock echo round trip: p50 ${viaSocket.p50Ms.toFixed(2)} ms, ` +
          `p99 ${viaSocket.p99Ms.toFixed(2)} ms (${viaSocket.samples} keys)`,
      );
    } finally {
      socket.destroy();
    }
    // The same on an ssh channel directly, so the debug shell server's own share is visible.
    const channel = await (await connection.ssh()).openShell({ cols: 80, rows: 24 });
    try {
      const direct = await measureEchoLatency(channel, 200);
      console.log(
        `ssh channel echo round trip:      p50 ${direct.p50Ms.toFixed(2)} ms, ` +
          `p99 ${direct.p99Ms.toFixed(2)} ms (${direct.samples} keys)`,
      );
    } finally {
      channel.close();
    }
  }),
);

test(
  'GuestConnection shares one connection for many channels and reconnects after a VM restart',
  { timeout: TEST_DEADLINE_MS },
  withSerialTail(async () => {
    const guest = new GuestConnection(vsockPath, key);
    try {
      // Concurrent first callers share one connect.
      const [first, second] = await Promise.all([guest.ssh(), guest.ssh()]);
      assert.equal(first, second);
      assert.equal(await guest.ssh(), first);

      // Every channel's command is a child of the same dropbear process: one connection.
      const parents = await Promise.all(
        [1, 2, 3].map(async () => {
          const result = await (await guest.ssh()).exec('echo $PPID');
          assert.equal(result.code, 0);
          return result.stdout.toString().trim();
        }),
      );
      assert.equal(new Set(parents).size, 1, `parents: ${parents.join(', ')}`);

      // A streaming exec: stdout, stderr and the exit code arrive apart.
      const channel = await first.openExec('echo out; echo err >&2; exit 3');
      const out = new Output(channel);
      const err = new Output(channel.stderr);
      const code = new Promise((resolve) => channel.once('exit', resolve));
      await new Promise((resolve) => channel.once('close', resolve));
      assert.deepEqual([out.text, err.text, await code], ['out\n', 'err\n', 3]);

      await lifecycle.restart();
      await first.closed;
      assert.equal(first.isOpen, false);
      const again = await guest.ssh();
      assert.notEqual(again, first);
      assert.equal((await again.exec('echo back')).stdout.toString(), 'back\n');

      // The debug shell server's shared connection reconnects the same way.
      const socket = await connectShell();
      try {
        const shellOut = new Output(socket);
        await shellOut.waitFor(PROMPT, 'shell prompt after the restart');
        socket.write('echo again-$((6*7))\n');
        await shellOut.waitFor(/again-42/, 'command output after the restart');
      } finally {
        socket.destroy();
      }
    } finally {
      guest.close();
    }
    await assert.rejects(guest.ssh(), /the VM is not running/);
  }),
);
