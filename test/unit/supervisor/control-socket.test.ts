// The control socket end to end, without a VM: a real SupervisorHost on a temp data directory,
// whose VMs come from FakeRunner, driven over run/control.sock with newline-delimited JSON-RPC
// (raw, and through ApiClient) as the `berth` command drives it.
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiClient } from '../../../core/api/client.ts';
import { ApiError } from '../../../core/api/errors.ts';
import { MAX_MESSAGE_BYTES } from '../../../core/api/jsonrpc.ts';
import { GiB } from '../../../core/disk/data-disk.ts';
import { dataPaths } from '../../../core/paths.ts';
import type { HostLimits } from '../../../core/settings/host-limits.ts';
import type { Settings } from '../../../core/settings/schema.ts';
import {
  DataDirLockedError,
  LOCK_FILE,
  readOwner,
} from '../../../core/supervisor/data-dir-lock.ts';
import { SupervisorHost } from '../../../core/supervisor/host.ts';
import { VmStartError } from '../../../core/supervisor/vm-runner.ts';
import { ControlConnection } from './control-connection.ts';
import { FakeRunner } from './fake-runner.ts';
import { runNode } from './processes.ts';

const HOST: HostLimits = { cores: 8, memoryMiB: 16384, freeDiskGiB: 500 };
/** defaultSettings(HOST): min(2, cores) cpus, 2048 MiB, 64 GiB, overlay2. */
const DEFAULTS: Settings = { cpus: 2, memoryMiB: 2048, diskGiB: 64, storageDriver: 'overlay2' };

interface Harness {
  home: string;
  paths: ReturnType<typeof dataPaths>;
  host: SupervisorHost;
  runner: FakeRunner;
  /** The settings each VM was made with, one entry per start. */
  made: Settings[];
  /** A new connection to the control socket, and an ApiClient on it. */
  connect(): Promise<{ conn: ControlConnection; api: ApiClient }>;
}

async function openHost(home: string, runner: FakeRunner, made: Settings[]) {
  return SupervisorHost.open({
    home,
    makeRunner: (settings) => {
      made.push({ ...settings });
      return runner;
    },
    hostLimits: () => HOST,
  });
}

function withHost(run: (h: Harness) => Promise<void>): () => Promise<void> {
  return async () => {
    const home = mkdtempSync(join(tmpdir(), 'berth-host-'));
    const runner = new FakeRunner();
    const made: Settings[] = [];
    const connections: ControlConnection[] = [];
    const host = await openHost(home, runner, made);
    const paths = dataPaths(home);
    try {
      await run({
        home,
        paths,
        host,
        runner,
        made,
        connect: async () => {
          const conn = await ControlConnection.open(paths.controlSocket);
          connections.push(conn);
          return { conn, api: new ApiClient(conn) };
        },
      });
    } finally {
      for (const conn of connections) conn.close();
      await host.close();
      rmSync(home, { recursive: true, force: true });
    }
  };
}

/** Resolves with the ApiError a call rejected with. */
async function apiError(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

const mode = (path: string) => statSync(path).mode & 0o777;

test(
  'the sockets are private: control.sock and debug-shell.sock 0600 in a 0700 run directory',
  withHost(async ({ home, paths }) => {
    assert.ok(statSync(paths.controlSocket).isSocket());
    assert.equal(mode(paths.controlSocket), 0o600);
    assert.ok(statSync(paths.debugShellSocket).isSocket());
    assert.equal(mode(paths.debugShellSocket), 0o600);
    assert.equal(mode(paths.run), 0o700);
    assert.equal(readOwner(join(home, LOCK_FILE)), process.pid);
    assert.equal(mode(join(home, LOCK_FILE)), 0o600);
  }),
);

test(
  'status of a new data directory: stopped, nothing pending, its data directory',
  withHost(async ({ home, connect }) => {
    const { api } = await connect();
    const status = await api.call('status', {});
    assert.equal(status.state, 'stopped');
    assert.deepEqual(status.pendingRestart, []);
    assert.equal(status.dataDirectory, home);
    assert.equal(typeof status.since, 'number');
    assert.equal(status.vmmPid, undefined);
  }),
);

test(
  'start: running, and a subscribed client sees starting, progress, then running',
  withHost(async ({ paths, runner, made, connect }) => {
    const { conn, api } = await connect();
    assert.deepEqual(await api.call('subscribe', {}), {
      events: ['state', 'progress', 'serial', 'settings', 'engine'],
    });
    const status = await api.call('start', {});
    assert.equal(status.state, 'running');
    assert.equal(status.backend, 'fake');
    assert.equal(status.vmmPid, 4242);
    assert.equal(runner.calls, 1);
    assert.deepEqual(made, [DEFAULTS]);
    // Notifications went out before the answer, on the same ordered stream.
    const states = conn.notifications('event.state').map((e) => `${e.from}>${e.to}`);
    assert.deepEqual(states, ['stopped>starting', 'starting>running']);
    for (const event of conn.notifications('event.state')) assert.equal(typeof event.at, 'number');
    assert.deepEqual(conn.notifications('event.progress'), [
      { operation: 'start', step: 'checking the factory image', percent: 2 },
      { operation: 'start', step: 'preparing the data disk', percent: 5 },
    ]);
    const order = conn.messages.map((m) => m.method ?? 'answer');
    assert.deepEqual(order.slice(-5), [
      'event.state',
      'event.progress',
      'event.progress',
      'event.state',
      'answer',
    ]);
    // The launcher created the data disk, sparse, at the default size.
    assert.equal(statSync(paths.dataDisk).size, 64 * GiB);
    assert.equal((await api.call('status', {})).state, 'running');
  }),
);

test(
  'subscribe with a list sends only those events; an unsubscribed client gets none',
  withHost(async ({ connect }) => {
    const only = await connect();
    const silent = await connect();
    assert.deepEqual(await only.api.call('subscribe', { events: ['state'] }), {
      events: ['state'],
    });
    await silent.api.call('status', {});
    await only.api.call('start', {});
    await silent.api.call('status', {});
    assert.equal(only.conn.notifications('event.state').length, 2);
    assert.deepEqual(only.conn.notifications('event.progress'), []);
    assert.deepEqual(
      silent.conn.messages.filter((m) => 'method' in m),
      [],
    );
    const seen: string[] = [];
    only.api.on('state', (event) => seen.push(`${event.from}>${event.to}`));
    await only.api.call('stop', {});
    assert.deepEqual(seen, ['running>stopping', 'stopping>stopped']);
  }),
);

test(
  'stop: the guest is asked to power off and the VM is stopped',
  withHost(async ({ runner, connect }) => {
    const { conn, api } = await connect();
    await api.call('start', {});
    await api.call('subscribe', { events: ['state'] });
    const status = await api.call('stop', {});
    assert.equal(status.state, 'stopped');
    assert.equal(status.lastStop?.graceful, true);
    assert.equal(runner.last.powerOffRequests, 1);
    assert.equal(runner.last.kills, 0);
    assert.equal(runner.alive, 0);
    assert.deepEqual(
      conn.notifications('event.state').map((e) => `${e.from}>${e.to}`),
      ['running>stopping', 'stopping>stopped'],
    );
    // Stopping what is stopped is fine and changes nothing.
    assert.equal((await api.call('stop', { deadlineMs: 0 })).state, 'stopped');
  }),
);

test(
  'a failed start answers vmFailed (1) with the serial tail, and status shows the error',
  withHost(async ({ runner, connect }) => {
    const { api } = await connect();
    runner.mode = 'manual';
    const started = api.call('start', {});
    while (!runner.pending) await new Promise((resolve) => setImmediate(resolve));
    runner.pending.fail(new VmStartError('the VMM exited early', { serialTail: 'panic: oops' }));
    const error = await apiError(started);
    assert.equal(error.code, 1);
    assert.match(error.message, /the VMM exited early/);
    assert.equal(error.data?.serialTail, 'panic: oops');
    const status = await api.call('status', {});
    assert.equal(status.state, 'error');
    assert.equal(status.error?.serialTail, 'panic: oops');
  }),
);

test(
  'settings.set with an invalid value is refused naming the field, and nothing changes',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    const before = await api.call('settings.get', {});
    const error = await apiError(api.call('settings.set', { changes: { memoryMiB: 100 } }));
    assert.equal(error.code, -32602);
    assert.deepEqual(
      error.data?.errors?.map((e) => e.field),
      ['memoryMiB'],
    );
    assert.match(error.message, /memory/);
    const after = await api.call('settings.get', {});
    assert.equal(after.revision, before.revision);
    assert.deepEqual(after.settings, before.settings);
    assert.equal((await api.call('settings.history', {})).length, 1);

    const several = await apiError(
      api.call('settings.set', { changes: { cpus: 99, storageDriver: 'zfs', color: 'red' } }),
    );
    assert.deepEqual(several.data?.errors?.map((e) => e.field).sort(), [
      'color',
      'cpus',
      'storageDriver',
    ]);
    assert.equal((await api.call('settings.get', {})).revision, before.revision);
  }),
);

test(
  'settings.get: the revision, the settings and this host limits',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    const view = await api.call('settings.get', {});
    assert.equal(view.revision, 0);
    assert.deepEqual(view.settings, DEFAULTS);
    assert.deepEqual(view.limits, {
      cpus: { min: 1, max: 8 },
      memoryMiB: { min: 512, max: 15360, step: 256 },
      diskGiB: { min: 64, max: 564 },
      storageDrivers: ['overlay2', 'btrfs', 'vfs'],
    });
    assert.deepEqual(view.pendingRestart, []);
    assert.deepEqual(view.warnings, []);
  }),
);

test(
  'settings.set while running: the change needs a restart and status says so',
  withHost(async ({ runner, connect }) => {
    const { conn, api } = await connect();
    await api.call('start', {});
    await api.call('subscribe', { events: ['settings'] });
    const change = await api.call('settings.set', { changes: { cpus: 4 } });
    assert.equal(change.changed, true);
    assert.equal(change.revision, 1);
    assert.deepEqual(change.settings, { ...DEFAULTS, cpus: 4 });
    assert.deepEqual(change.diff, [{ field: 'cpus', from: 2, to: 4 }]);
    assert.deepEqual(change.restartNeeded, ['cpus']);
    assert.equal(change.applied, false);
    assert.equal(runner.calls, 1, 'not restarted');
    const status = await api.call('status', {});
    assert.equal(status.state, 'running');
    assert.deepEqual(status.pendingRestart, ['cpus']);
    assert.deepEqual((await api.call('settings.get', {})).pendingRestart, ['cpus']);
    assert.deepEqual(conn.notifications('event.settings'), [
      { revision: 1, settings: { ...DEFAULTS, cpus: 4 }, pendingRestart: ['cpus'] },
    ]);
  }),
);

test(
  'settings.set with apply: true restarts the VM with the new settings; nothing is pending',
  withHost(async ({ runner, made, connect }) => {
    const { api } = await connect();
    await api.call('start', {});
    const first = runner.last;
    const change = await api.call('settings.set', { changes: { cpus: 4 }, apply: true });
    assert.equal(change.applied, true);
    assert.deepEqual(change.restartNeeded, ['cpus']);
    assert.equal(runner.calls, 2, 'a second start');
    assert.equal(first.alive, false, 'the first VM is gone');
    assert.equal(first.powerOffRequests, 1);
    assert.deepEqual(
      made.map((s) => s.cpus),
      [2, 4],
    );
    const status = await api.call('status', {});
    assert.equal(status.state, 'running');
    assert.deepEqual(status.pendingRestart, []);
    assert.equal(runner.alive, 1);
    assert.equal(runner.maxAlive, 1, 'never two VMs at once');
  }),
);

test(
  'apply: true with nothing new still applies what is pending',
  withHost(async ({ runner, connect }) => {
    const { api } = await connect();
    await api.call('start', {});
    await api.call('settings.set', { changes: { memoryMiB: 4096 } });
    assert.deepEqual((await api.call('status', {})).pendingRestart, ['memoryMiB']);
    const change = await api.call('settings.set', { changes: {}, apply: true });
    assert.equal(change.changed, false);
    assert.equal(change.applied, true);
    assert.equal(runner.calls, 2);
    assert.deepEqual((await api.call('status', {})).pendingRestart, []);
  }),
);

test(
  'settings.set while stopped: saved, nothing pending, and apply does not start the VM',
  withHost(async ({ runner, made, connect }) => {
    const { api } = await connect();
    const change = await api.call('settings.set', { changes: { cpus: 3 }, apply: true });
    assert.equal(change.changed, true);
    assert.equal(change.applied, false);
    assert.equal(runner.calls, 0);
    const status = await api.call('status', {});
    assert.equal(status.state, 'stopped');
    assert.deepEqual(status.pendingRestart, []);
    await api.call('start', {});
    assert.deepEqual(made, [{ ...DEFAULTS, cpus: 3 }], 'the next start uses it');
  }),
);

test(
  'settings.history lists commits newest first, with their source',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    await api.call('settings.set', { changes: { cpus: 4 } });
    await api.call('settings.set', { changes: { memoryMiB: 4096 }, source: 'gui', message: 'ui' });
    await api.call('settings.set', { changes: { storageDriver: 'btrfs' } });
    const history = await api.call('settings.history', {});
    assert.deepEqual(
      history.map((c) => c.revision),
      [3, 2, 1, 0],
    );
    assert.deepEqual(
      history.map((c) => c.source),
      ['cli', 'gui', 'cli', 'init'],
    );
    assert.equal(history[1]?.message, 'ui');
    assert.deepEqual(history[0]?.settings, {
      cpus: 4,
      memoryMiB: 4096,
      diskGiB: 64,
      storageDriver: 'btrfs',
    });
    assert.deepEqual(history[3]?.settings, DEFAULTS);
    const limited = await api.call('settings.history', { limit: 2 });
    assert.deepEqual(
      limited.map((c) => c.revision),
      [3, 2],
    );
  }),
);

test(
  'settings.rollback to revision 0 is a new commit with revision 0 settings',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    await api.call('settings.set', { changes: { cpus: 4 } });
    await api.call('settings.set', { changes: { memoryMiB: 8192 } });
    const change = await api.call('settings.rollback', { revision: 0 });
    assert.equal(change.changed, true);
    assert.equal(change.revision, 3);
    assert.deepEqual(change.settings, DEFAULTS);
    assert.deepEqual(change.restartNeeded.sort(), ['cpus', 'memoryMiB']);
    const view = await api.call('settings.get', {});
    assert.equal(view.revision, 3);
    assert.deepEqual(view.settings, DEFAULTS);
    const [newest] = await api.call('settings.history', { limit: 1 });
    assert.equal(newest?.source, 'rollback');
    assert.equal(newest?.restoredRevision, 0);
    assert.equal(newest?.requestedBy, 'cli');
    // Rolling back to where we are writes nothing.
    const again = await api.call('settings.rollback', { revision: 0 });
    assert.equal(again.changed, false);
    assert.equal((await api.call('settings.get', {})).revision, 3);
  }),
);

test(
  'settings.rollback to a revision that does not exist is a settings store error (3)',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    const error = await apiError(api.call('settings.rollback', { revision: 42 }));
    assert.equal(error.code, 3);
    assert.match(error.message, /no revision 42/);
    assert.equal((await api.call('settings.get', {})).revision, 0);
  }),
);

test(
  'an unknown method is -32601; as a notification it gets no answer',
  withHost(async ({ connect }) => {
    const { conn } = await connect();
    const answer = await conn.request('vm.launch', {});
    assert.equal(answer.jsonrpc, '2.0');
    assert.equal(answer.error.code, -32601);
    assert.match(answer.error.message, /vm\.launch/);
    conn.send(JSON.stringify({ jsonrpc: '2.0', method: 'vm.launch' }));
    conn.send(JSON.stringify({ jsonrpc: '2.0', method: 'status' }));
    const count = conn.messages.length;
    const status = await conn.request('status');
    assert.equal(status.result.state, 'stopped');
    assert.equal(conn.messages.length, count + 1, 'notifications got no answers');
  }),
);

test(
  'a line that is not JSON answers -32700 to id null, and the connection keeps working',
  withHost(async ({ connect }) => {
    const { conn, api } = await connect();
    await conn.write('this is not json\n');
    const parseError = await conn.waitFor((m) => m.error?.code === -32700, 'the parse error');
    assert.equal(parseError.id, null);
    assert.equal(parseError.jsonrpc, '2.0');
    assert.match(parseError.error.message, /not JSON/);
    assert.equal((await api.call('status', {})).state, 'stopped');
    assert.ok(conn.isOpen);
  }),
);

test(
  'invalid requests answer -32600 to their id when it is usable',
  withHost(async ({ connect }) => {
    const { conn } = await connect();
    await conn.write('{"jsonrpc":"1.0","id":5,"method":"status"}\n');
    const wrongVersion = await conn.waitFor((m) => m.id === 5);
    assert.equal(wrongVersion.error.code, -32600);
    await conn.write('[{"jsonrpc":"2.0","id":6,"method":"status"}]\n');
    const batch = await conn.waitFor((m) => m.id === null && m.error?.code === -32600);
    assert.match(batch.error.message, /batches/);
    await conn.write('{"jsonrpc":"2.0","id":"m"}\n');
    const noMethod = await conn.waitFor((m) => m.id === 'm');
    assert.equal(noMethod.error.code, -32600);
    const bad = await conn.request('stop', { deadlineMs: -1, now: true });
    assert.equal(bad.error.code, -32602);
    assert.deepEqual(
      bad.error.data.errors.map((e: { field: string }) => e.field),
      ['now', 'deadlineMs'],
    );
  }),
);

test(
  'a line over 2 MiB is refused and the connection closed; other clients are unaffected',
  withHost(async ({ connect }) => {
    const other = await connect();
    const { conn } = await connect();
    void conn.write(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x61));
    await conn.closed;
    const refusal = conn.messages.find((m) => m.error);
    assert.equal(refusal?.error.code, -32600);
    assert.equal(refusal?.id, null);
    assert.match(refusal?.error.message, /longer than 2097152 bytes/);
    assert.equal((await other.api.call('status', {})).state, 'stopped');
    const fresh = await connect();
    assert.equal((await fresh.api.call('status', {})).state, 'stopped');
  }),
);

test(
  'a request just under 2 MiB (a full 1 MiB session write) is read and answered',
  withHost(async ({ connect }) => {
    const { conn } = await connect();
    const data = Buffer.alloc(1024 * 1024, 1).toString('base64');
    const answer = await conn.request('session.write', { id: 1, data });
    assert.equal(answer.error.code, 5, 'no session 1: answered, not cut off');
    assert.match(answer.error.message, /no session 1/);
    assert.ok(conn.isOpen);
  }),
);

test(
  'logs: the last lines of the serial log',
  withHost(async ({ paths, connect }) => {
    const { api } = await connect();
    assert.deepEqual(await api.call('logs', {}), { text: '', path: paths.serialLog });
    writeFileSync(paths.serialLog, 'one\ntwo\nthree\n');
    assert.deepEqual(await api.call('logs', { lines: 2 }), {
      text: 'two\nthree',
      path: paths.serialLog,
    });
  }),
);

test(
  'reset with confirm while stopped: backup written, defaults back, data disk deleted',
  withHost(async ({ home, paths, runner, connect }) => {
    const { conn, api } = await connect();
    await api.call('settings.set', { changes: { cpus: 4, diskGiB: 100 } });
    await api.call('start', {});
    await api.call('stop', {});
    assert.equal(statSync(paths.dataDisk).size, 100 * GiB);
    await api.call('subscribe', { events: ['progress', 'settings'] });
    const result = await api.call('reset', { confirm: true });
    assert.equal(result.restarted, false);
    assert.deepEqual(result.settings, DEFAULTS);
    assert.equal(result.revision, 2);
    assert.equal(runner.calls, 1, 'not started again');
    // The backup is under backups/ and holds the whole history from before the reset.
    assert.ok(result.backup.startsWith(join(home, 'backups')), result.backup);
    assert.deepEqual(readdirSync(join(home, 'backups')), [result.backup.split('/').at(-1)]);
    const backup = JSON.parse(readFileSync(result.backup, 'utf8'));
    assert.equal(backup.format, 'berth-settings-backup');
    assert.equal(backup.head, 1);
    assert.deepEqual(
      backup.revisions.map((r: { revision: number }) => r.revision),
      [0, 1],
    );
    assert.equal(existsSync(paths.dataDisk), false, 'the data disk is deleted until next start');
    const view = await api.call('settings.get', {});
    assert.deepEqual(view.settings, DEFAULTS);
    assert.equal(view.revision, 2);
    const [newest] = await api.call('settings.history', { limit: 1 });
    assert.equal(newest?.source, 'reset');
    assert.equal(newest?.requestedBy, 'cli');
    assert.equal((await api.call('status', {})).state, 'stopped');
    const steps = conn.notifications('event.progress');
    assert.ok(steps.length > 0);
    assert.ok(steps.every((p) => p.operation === 'reset'));
    assert.equal(steps.at(-1).percent, 100);
    assert.equal(conn.notifications('event.settings').at(-1)?.revision, 2);
    // The next start makes a fresh disk of the default size.
    await api.call('start', {});
    assert.equal(statSync(paths.dataDisk).size, 64 * GiB);
  }),
);

test(
  'reset with confirm while running: the VM runs again on a fresh data disk',
  withHost(async ({ paths, runner, made, connect }) => {
    const { api } = await connect();
    await api.call('settings.set', { changes: { memoryMiB: 4096 } });
    await api.call('start', {});
    const fd = openSync(paths.dataDisk, 'r+');
    writeSync(fd, Buffer.from('guest data'), 0, 10, 0);
    closeSync(fd);
    const result = await api.call('reset', { confirm: true, source: 'gui' });
    assert.equal(result.restarted, true);
    assert.equal(runner.calls, 2);
    assert.equal(runner.vms[0]?.alive, false);
    assert.deepEqual(made.at(-1), DEFAULTS, 'restarted with the defaults');
    const status = await api.call('status', {});
    assert.equal(status.state, 'running');
    assert.deepEqual(status.pendingRestart, []);
    assert.equal(statSync(paths.dataDisk).size, 64 * GiB);
    const head = Buffer.alloc(10);
    const read = openSync(paths.dataDisk, 'r');
    readSync(read, head, 0, 10, 0);
    closeSync(read);
    assert.deepEqual(head, Buffer.alloc(10), 'the old contents are gone');
    const [newest] = await api.call('settings.history', { limit: 1 });
    assert.equal(newest?.requestedBy, 'gui');
  }),
);

test(
  'reset without confirm: true is refused and nothing changes',
  withHost(async ({ home, paths, runner, connect }) => {
    const { api } = await connect();
    await api.call('settings.set', { changes: { cpus: 4 } });
    await api.call('start', {});
    for (const params of [{}, { confirm: false }, { confirm: 'yes' }]) {
      const error = await apiError(api.call('reset', params as { confirm: true }));
      assert.equal(error.code, -32602);
      assert.deepEqual(
        error.data?.errors?.map((e) => e.field),
        ['confirm'],
      );
      assert.match(error.message, /confirm: must be true/);
    }
    assert.equal(existsSync(join(home, 'backups')), false);
    assert.ok(existsSync(paths.dataDisk));
    const view = await api.call('settings.get', {});
    assert.equal(view.revision, 1);
    assert.equal(view.settings.cpus, 4);
    assert.equal((await api.call('status', {})).state, 'running');
    assert.equal(runner.calls, 1);
    assert.equal(runner.last.powerOffRequests, 0);
  }),
);

test(
  'session.open while stopped is wrongState (2) and says to start the VM',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    const error = await apiError(api.call('session.open', {}));
    assert.equal(error.code, 2);
    assert.match(error.message, /stopped/);
    assert.match(error.message, /start it first \(berth start\)/);
    const exec = await apiError(api.call('session.open', { command: 'uname -a' }));
    assert.equal(exec.code, 2);
  }),
);

test(
  'session.open while running but the guest SSH is unreachable is answered at once, saying so',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    await api.call('start', {});
    // The fake VM has no vsock socket, so the guest's SSH cannot be reached.
    const error = await apiError(api.call('session.open', {}));
    assert.match(error.message, /cannot reach the VM's SSH service/);
    assert.equal((await api.call('status', {})).state, 'running');
  }),
);

test(
  'session.open failing to reach the guest SSH is a session error (5), not an internal error',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    await api.call('start', {});
    const error = await apiError(api.call('session.open', { command: 'true' }));
    assert.equal(error.code, 5);
  }),
);

test(
  'session calls for a session this client never opened are a session error (5)',
  withHost(async ({ connect }) => {
    const { api } = await connect();
    for (const call of [
      api.call('session.write', { id: 3, data: 'aGk=' }),
      api.call('session.eof', { id: 3 }),
      api.call('session.resize', { id: 3, cols: 80, rows: 24 }),
      api.call('session.close', { id: 3 }),
    ]) {
      const error = await apiError(call);
      assert.equal(error.code, 5);
      assert.match(error.message, /no session 3/);
    }
  }),
);

test(
  'a second host on the same data directory from another process is refused',
  withHost(async ({ home, connect }) => {
    const result = await runNode(`
      const { SupervisorHost } = await load('core/supervisor/host.ts');
      const { DataDirLockedError } = await load('core/supervisor/data-dir-lock.ts');
      try {
        const host = await SupervisorHost.open({
          home: ${JSON.stringify(home)},
          hostLimits: () => (${JSON.stringify(HOST)}),
        });
        await host.close();
        console.log('opened');
      } catch (error) {
        console.log(error instanceof DataDirLockedError ? 'locked ' + error.ownerPid : 'other ' + error.message);
      }
    `);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), `locked ${process.pid}`);
    // The first host still owns the directory and still answers.
    assert.equal(readOwner(join(home, LOCK_FILE)), process.pid);
    const { api } = await connect();
    assert.equal((await api.call('status', {})).state, 'stopped');
  }),
);

test(
  'a second SupervisorHost.open on the same home in this process is refused with DataDirLockedError',
  withHost(async ({ home, connect }) => {
    const runner = new FakeRunner();
    await assert.rejects(openHost(home, runner, []), (error: unknown) => {
      assert.ok(error instanceof DataDirLockedError, String(error));
      assert.equal(error.ownerPid, process.pid);
      return true;
    });
    assert.equal(readOwner(join(home, LOCK_FILE)), process.pid, 'the first host keeps its lock');
    const { api } = await connect();
    assert.equal((await api.call('status', {})).state, 'stopped');
  }),
);

test('host.close() stops the VM, drops clients and removes the lock and the sockets', async () => {
  const home = mkdtempSync(join(tmpdir(), 'berth-host-'));
  try {
    const runner = new FakeRunner();
    const host = await openHost(home, runner, []);
    const paths = dataPaths(home);
    const conn = await ControlConnection.open(paths.controlSocket);
    const api = new ApiClient(conn);
    await api.call('start', {});
    let done = false;
    void host.done.then(() => (done = true));
    await host.close();
    assert.equal(done, true);
    assert.equal(runner.last.powerOffRequests, 1, 'the guest was asked to power off');
    assert.equal(runner.alive, 0);
    await conn.closed;
    await assert.rejects(api.call('status', {}), /closed/);
    assert.equal(existsSync(join(home, LOCK_FILE)), false, 'lock file gone');
    assert.equal(existsSync(paths.controlSocket), false, 'control socket gone');
    assert.equal(existsSync(paths.debugShellSocket), false, 'debug shell socket gone');
    // Closing twice is harmless, and the directory can be opened again.
    await host.close();
    const again = await openHost(home, new FakeRunner(), []);
    assert.equal(readOwner(join(home, LOCK_FILE)), process.pid);
    await again.close();
    assert.equal(existsSync(join(home, LOCK_FILE)), false);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
