// The lifecycle on a real VM (qemu backend, our devices): start, graceful stop keeps synced data,
// kill -9 of QEMU is reported as an error with the serial tail, and restart recovers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataDisk, GiB } from '../../core/disk/data-disk.ts';
import { authorizedKeyArgument, loadOrCreateSshKey } from '../../core/guest/ssh-keys.ts';
import { GuestSsh } from '../../core/guest/ssh-session.ts';
import { buildPaths } from '../../core/paths.ts';
import { VmLifecycle } from '../../core/supervisor/lifecycle.ts';
import { QemuVmRunner } from '../../core/supervisor/qemu-runner.ts';

const work = mkdtempSync(join(tmpdir(), 'berth-lifecycle-'));
const runDir = join(work, 'run');
const disk = new DataDisk(join(work, 'data.img'));
disk.create(2 * GiB);
const key = loadOrCreateSshKey(join(work, 'ssh'));
const lifecycle = new VmLifecycle({
  runner: new QemuVmRunner({
    imageDir: buildPaths.image,
    dataDisk: disk.path,
    runDir,
    serialLog: join(work, 'serial.log'),
    cpus: 2,
    memoryMiB: 1024,
    kernelArgs: [authorizedKeyArgument(key)],
  }),
});
after(async () => {
  await lifecycle.stop({ deadlineMs: 5000 }).catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

async function inGuest(command: string): Promise<string> {
  const ssh = await GuestSsh.connect(join(runDir, 'vsock.sock'), key);
  try {
    const result = await ssh.exec(command);
    assert.equal(result.code, 0, `${command}: ${result.stderr.toString()}`);
    return result.stdout.toString();
  } finally {
    ssh.close();
  }
}

/** QEMU's pid, found by the run directory in its command line. */
function qemuPid(): number {
  const lines = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n');
  const line = lines.find((l) => l.includes('qemu-system') && l.includes(runDir));
  assert.ok(line, 'QEMU is running');
  return Number(line.trim().split(/\s+/)[0]);
}

test(
  'start, graceful stop, and start again keep what the guest synced',
  { timeout: 300_000 },
  async () => {
    const states: string[] = [];
    lifecycle.on('state', (event) => states.push(event.to));
    await lifecycle.start();
    assert.equal(lifecycle.status().state, 'running');
    assert.equal(lifecycle.status().backend, 'qemu');
    await inGuest('echo kept > /var/kept.txt && sync');
    await lifecycle.stop();
    assert.equal(lifecycle.status().state, 'stopped');
    assert.equal(lifecycle.status().lastStop?.graceful, true);
    await lifecycle.start();
    assert.equal(await inGuest('cat /var/kept.txt'), 'kept\n');
    assert.deepEqual(states, ['starting', 'running', 'stopping', 'stopped', 'starting', 'running']);
  },
);

test(
  'kill -9 of QEMU is an error with the exit reason and serial tail; restart recovers',
  { timeout: 300_000 },
  async () => {
    const errored = new Promise<void>((resolve) =>
      lifecycle.on('state', (e) => e.to === 'error' && resolve()),
    );
    process.kill(qemuPid(), 'SIGKILL');
    await errored;
    const status = lifecycle.status();
    assert.equal(status.state, 'error');
    assert.match(status.error?.exitReason ?? '', /SIGKILL/);
    assert.match(status.error?.serialTail ?? '', /BERTH-READY/);
    await lifecycle.restart();
    assert.equal(lifecycle.status().state, 'running');
    assert.equal(await inGuest('cat /var/kept.txt'), 'kept\n');
    await lifecycle.stop();
    assert.equal(lifecycle.status().state, 'stopped');
  },
);
