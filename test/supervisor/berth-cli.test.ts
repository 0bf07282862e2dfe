// The `berth` command end to end on a real VM (qemu backend, our devices), the way a user drives
// it: start, exec, stop and start keeping data, settings with --apply, a refused bad value, the
// debug shell through socat, two consoles at once, kill -9 of the VMM, and reset to factory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { SettingsView, VmStatus } from '../../core/api/types.ts';
import { BerthHome, waitForOutput } from '../support/berth-cli.ts';

const berth = new BerthHome();
after(() => berth.dispose());
const STEP = { timeout: 240_000 };

test('start, then exec runs a command and propagates output and exit code', STEP, async () => {
  // Small and distinct from the defaults, so the later cpus=2 change is visible in the guest.
  await berth.ok(['settings', 'set', 'cpus=1', 'memory=1024']);
  const started = await berth.ok(['start']);
  assert.match(started, /the VM is running/);
  const status = await berth.json<VmStatus>(['status']);
  assert.equal(status.state, 'running');
  assert.equal(status.backend, 'qemu');
  assert.match(await berth.ok(['exec', '--', 'uname', '-a']), /^Linux berth .* x86_64/);
  const failing = await berth.run(['exec', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.deepEqual([failing.code, failing.stdout, failing.stderr], [7, 'out\n', 'err\n']);
  // Arguments arrive exactly as given, spaces and quotes included.
  assert.equal(await berth.ok(['exec', '--', 'echo', "it's  two  spaces"]), "it's  two  spaces\n");
});

test('a file written and synced survives stop and start; stop is graceful', STEP, async () => {
  await berth.ok(['exec', '--', 'sh', '-c', 'echo kept > /var/kept.txt && sync']);
  const stopped = await berth.json<VmStatus>(['stop']);
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.lastStop?.graceful, true);
  assert.match(berth.serialTail(), /berth-init: \/var unmounted/);
  await berth.ok(['start']);
  assert.equal(await berth.ok(['exec', '--', 'cat', '/var/kept.txt']), 'kept\n');
});

test(
  'settings set cpus=2 --apply restarts the VM: nproc prints 2, a grown disk grows /var',
  STEP,
  async () => {
    // statfs of /var alone: busybox df walks every mount and exits 1 when one of the engine's
    // (being set up at that moment) cannot be read.
    const varKiB = async () => {
      const [blocks, size] = (await berth.ok(['exec', '--', 'stat', '-f', '-c', '%b %S', '/var']))
        .trim()
        .split(' ')
        .map(Number);
      return (blocks! * size!) / 1024;
    };
    assert.equal(await berth.ok(['exec', '--', 'nproc']), '1\n');
    const before = await varKiB();
    const disk = (await berth.json<SettingsView>(['settings', 'get'])).settings.diskGiB;
    const out = await berth.ok(['settings', 'set', 'cpus=2', `disk=${disk + 1}`, '--apply']);
    assert.match(out, /cpus 1 -> 2, disk \d+ -> \d+; the VM was restarted to apply it/);
    assert.equal(await berth.ok(['exec', '--', 'nproc']), '2\n');
    const grown = await varKiB();
    assert.ok(grown - before > 900 * 1024, `/var grew by ~1 GiB: ${before} -> ${grown} KiB`);
    assert.deepEqual((await berth.json<VmStatus>(['status'])).pendingRestart, []);
  },
);

test('a bad value is refused with a message and nothing changes', STEP, async () => {
  const before = await berth.json<SettingsView>(['settings', 'get']);
  const pidBefore = (await berth.json<VmStatus>(['status'])).vmmPid;
  const refused = await berth.run(['settings', 'set', 'memory=100']);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /memory must be between 512 and \d+ MiB in steps of 256 \(got 100\)/,
  );
  const json = await berth.run(['settings', 'set', 'memory=100', '--json']);
  assert.equal(JSON.parse(json.stdout).error.data.errors[0].field, 'memoryMiB');
  const afterRefusal = await berth.json<SettingsView>(['settings', 'get']);
  assert.deepEqual(afterRefusal.settings, before.settings);
  assert.equal(afterRefusal.revision, before.revision);
  assert.equal((await berth.json<VmStatus>(['status'])).vmmPid, pidBefore, 'the VM kept running');
});

test(
  'a debug-shell.sock session through socat runs a command; the socket is 0600',
  STEP,
  async () => {
    const socket = berth.paths.debugShellSocket;
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const socat = spawn('socat', ['-', `UNIX-CONNECT:${socket}`], { stdio: 'pipe' });
    try {
      socat.stdin.write('echo debug-$((6*7))\n');
      await waitForOutput(socat, /debug-42/);
      socat.stdin.write('exit\n');
      await new Promise((resolve) => socat.once('exit', resolve));
    } finally {
      socat.kill();
    }
  },
);

test('two consoles at once are two separate shells', STEP, async () => {
  const consoles = [berth.spawn(['console']), berth.spawn(['console'])];
  try {
    const pids = await Promise.all(
      consoles.map(async (child, i) => {
        const seen = waitForOutput(child, new RegExp(`shell-${i}-(\\d+)\\r?\\n`));
        child.stdin.write(`echo shell-${i}-$$\n`);
        return (await seen).match(new RegExp(`shell-${i}-(\\d+)\\r?\\n`))![1];
      }),
    );
    assert.notEqual(pids[0], pids[1]);
    for (const child of consoles) child.stdin.write('exit\n');
    const codes = await Promise.all(
      consoles.map((child) => new Promise((resolve) => child.once('exit', resolve))),
    );
    assert.deepEqual(codes, [0, 0]);
  } finally {
    for (const child of consoles) child.kill();
  }
});

test(
  'kill -9 of the VMM gives state error with the serial tail; restart recovers',
  STEP,
  async () => {
    const { vmmPid } = await berth.json<VmStatus>(['status']);
    assert.ok(vmmPid, 'status names the VMM process');
    process.kill(vmmPid, 'SIGKILL');
    let status = await berth.json<VmStatus>(['status']).catch(() => null);
    for (let i = 0; i < 100 && status?.state !== 'error'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const run = await berth.run(['status', '--json']);
      status = JSON.parse(run.stdout);
    }
    assert.equal(status?.state, 'error');
    assert.match(status.error?.message ?? '', /stopped unexpectedly \(killed by SIGKILL\)/);
    assert.match(status.error?.serialTail ?? '', /BERTH-READY/);
    const human = await berth.run(['status']);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /berth restart/);
    await berth.ok(['restart']);
    assert.equal(await berth.ok(['exec', '--', 'cat', '/var/kept.txt']), 'kept\n');
  },
);

test(
  'reset --yes: the file is gone, settings are defaults, the history backup exists',
  STEP,
  async () => {
    const refused = await berth.run(['reset']);
    assert.equal(refused.code, 2, 'reset without --yes and without a terminal is refused');
    assert.equal(await berth.ok(['exec', '--', 'cat', '/var/kept.txt']), 'kept\n');
    await berth.ok(['reset', '--yes']);
    const gone = await berth.run(['exec', '--', 'cat', '/var/kept.txt']);
    assert.notEqual(gone.code, 0);
    const view = await berth.json<SettingsView>(['settings', 'get']);
    assert.equal(view.settings.memoryMiB, Math.min(2048, view.limits.memoryMiB.max));
    assert.equal(view.settings.cpus, Math.min(2, view.limits.cpus.max));
    const backups = readdirSync(join(berth.home, 'backups'));
    assert.equal(backups.length, 1);
    assert.ok(existsSync(join(berth.home, 'backups', backups[0]!)));
    assert.equal((await berth.json<VmStatus>(['status'])).state, 'running');
  },
);
