// Our device models proven by Linux's own drivers: a real guest under QEMU (TCG here) using our
// virtio-blk, virtio-vsock and virtio-rng over vhost-user, driven over SSH to its dropbear,
// which itself runs over our vsock. Every wait has a deadline; failures print the serial tail.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DeviceServer } from '../../core/backends/qemu/device-servers.ts';
import type { QemuVm } from '../../core/backends/qemu/qemu-vm.ts';
import { DataDisk, GiB } from '../../core/disk/data-disk.ts';
import { connectGuestPort } from '../../core/guest/hybrid-vsock.ts';
import {
  authorizedKeyArgument,
  type GuestSshKey,
  loadOrCreateSshKey,
} from '../../core/guest/ssh-keys.ts';
import { GuestSsh } from '../../core/guest/ssh-session.ts';
import { bootImage, powerOff } from '../support/guest-vm.ts';

const MiB = 1 << 20;
const PATTERN_BYTES = 64 * MiB;
const ECHO_BYTES = 16 * MiB;
const GUEST_ECHO_PORT = 5000;
const HOST_ECHO_PORT = 6000;

const work = mkdtempSync(join(tmpdir(), 'berth-devices-'));
const paths = {
  disk: join(work, 'disk.img'),
  blk: join(work, 'blk.sock'),
  rng: join(work, 'rng.sock'),
  vsock: join(work, 'vsock.sock'),
  uds: join(work, 'v.sock'),
};
let servers: { blk: DeviceServer; rng: DeviceServer; vsock: DeviceServer };
let key: GuestSshKey;
let vm: QemuVm | undefined;
let ssh: GuestSsh | undefined;
let bootCount = 0;

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function boot(): Promise<void> {
  bootCount++;
  const booted = await bootImage({
    disk: { kind: 'vhost-user', socket: paths.blk },
    vsock: { socket: paths.vsock },
    rng: { socket: paths.rng },
    serialLog: join(work, `serial-${bootCount}.log`),
    kernelArgs: [authorizedKeyArgument(key)],
  });
  vm = booted.vm;
  ssh = await GuestSsh.connect(paths.uds, key);
}

async function shutdown(): Promise<void> {
  ssh?.close();
  ssh = undefined;
  if (vm) await powerOff(vm);
  vm = undefined;
}

/** A command in the guest over SSH; a failure shows its output and the serial log's tail. */
async function guest(command: string, timeoutMs = 120_000): Promise<string> {
  const timer = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`\`${command}\` did not finish within ${timeoutMs / 1000} s`)),
      timeoutMs,
    ).unref(),
  );
  const result = await Promise.race([ssh!.exec(command), timer]);
  if (result.code !== 0) {
    assert.fail(
      `\`${command}\` exited ${result.code}: ${result.stderr.toString()}\n--- serial tail ---\n${vm?.serialTail(30)}`,
    );
  }
  return result.stdout.toString();
}

function hostSha256(path: string, bytes: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    readSync(fd, buf, 0, bytes, 0);
    return sha256(buf);
  } finally {
    closeSync(fd);
  }
}

before(async () => {
  // The data disk starts with bytes that are neither ext4 nor blank, so init leaves it alone
  // (tmpfs /var) and the guest may write the raw device.
  new DataDisk(paths.disk).create(1 * GiB);
  const fd = openSync(paths.disk, 'r+');
  writeSync(fd, randomBytes(128 * 1024), 0, 128 * 1024, 0);
  closeSync(fd);
  servers = {
    blk: await DeviceServer.start({ device: 'blk', socket: paths.blk, disk: paths.disk }),
    rng: await DeviceServer.start({ device: 'rng', socket: paths.rng }),
    vsock: await DeviceServer.start({
      device: 'vsock',
      socket: paths.vsock,
      guestCid: 3,
      uds: paths.uds,
    }),
  };
  key = loadOrCreateSshKey(join(work, 'ssh'));
  await boot();
});

after(async () => {
  ssh?.close();
  vm?.kill();
  await Promise.all(Object.values(servers ?? {}).map((s) => s.stop()));
  rmSync(work, { recursive: true, force: true });
});

test('ssh over our vsock runs uname -a and brings back its output and exit code', async () => {
  const result = await ssh!.exec('uname -a');
  assert.equal(result.code, 0);
  assert.match(result.stdout.toString(), /^Linux berth 6\.12\.\S+ .* x86_64 GNU\/Linux\n$/);
  const failing = await ssh!.exec('echo to-stderr >&2; exit 7');
  assert.equal(failing.code, 7);
  assert.equal(failing.stderr.toString(), 'to-stderr\n');
});

test('virtio-rng feeds the guest hwrng', async () => {
  assert.match(await guest('cat /sys/class/misc/hw_random/rng_current'), /^virtio_rng/);
  const bytes = await guest('head -c 4096 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
  assert.equal(bytes.length, 8192);
  assert.notEqual(bytes, '0'.repeat(8192));
});

test(
  'a 64 MiB pattern written to /dev/vda agrees in the guest, on the host file and after a restart',
  { timeout: 600_000 },
  async () => {
    const written = (
      await guest(
        `head -c ${PATTERN_BYTES} /dev/urandom > /tmp/pattern && ` +
          'dd if=/tmp/pattern of=/dev/vda bs=1M oflag=direct conv=fsync 2>/dev/null && sync && ' +
          'sha256sum /tmp/pattern && rm /tmp/pattern',
      )
    ).split(' ')[0];
    // The guest's sync returned, so its flush completed: the host file must already hold the data.
    assert.equal(hostSha256(paths.disk, PATTERN_BYTES), written, 'host file after the guest flush');
    const readBack = (
      await guest(
        `echo 3 > /proc/sys/vm/drop_caches; head -c ${PATTERN_BYTES} /dev/vda | sha256sum`,
      )
    ).split(' ')[0];
    assert.equal(readBack, written, 'read back through virtio-blk');

    await shutdown();
    await boot();
    const afterRestart = (await guest(`head -c ${PATTERN_BYTES} /dev/vda | sha256sum`)).split(
      ' ',
    )[0];
    assert.equal(
      afterRestart,
      written,
      'after a VM restart (the back-end served a new QEMU connection)',
    );
  },
);

async function echoThrough(socket: Socket, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (data: Buffer) => {
      chunks.push(data);
      received += data.length;
      if (received >= payload.length) {
        socket.end();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('error', reject);
    socket.write(payload);
  });
}

test('a host-initiated vsock connection echoes 16 MiB intact', { timeout: 300_000 }, async () => {
  // berth-vsockd writes a byte to --ready-fd once it listens: wait for it (at most 10 s).
  await guest(
    `setsid /usr/libexec/berth/berth-vsockd --port ${GUEST_ECHO_PORT} --ready-fd 3 -- /bin/cat 3>/tmp/echo.ready </dev/null >/dev/null 2>&1 & ` +
      'i=0; while [ ! -s /tmp/echo.ready ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -s /tmp/echo.ready ]',
  );
  const payload = randomBytes(ECHO_BYTES);
  const socket = await connectGuestPort(paths.uds, GUEST_ECHO_PORT);
  const echoed = await echoThrough(socket, payload);
  assert.equal(echoed.length, payload.length);
  assert.equal(sha256(echoed), sha256(payload));
});

test('a guest-initiated vsock connection echoes 16 MiB intact', { timeout: 300_000 }, async () => {
  const server: Server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(`${paths.uds}_${HOST_ECHO_PORT}`, resolve));
  try {
    const out = await guest(
      `head -c ${ECHO_BYTES} /dev/urandom > /tmp/in && berth-vsock-connect 2 ${HOST_ECHO_PORT} < /tmp/in > /tmp/out && ` +
        'wc -c < /tmp/out && sha256sum /tmp/in /tmp/out; rm -f /tmp/in /tmp/out',
    );
    const [size, first, second] = [
      out.split('\n')[0],
      ...out
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(' ')[0]),
    ];
    assert.equal(Number(size), ECHO_BYTES);
    assert.equal(first, second);
  } finally {
    server.close();
  }
});

test('200 connections opened and closed leave no state behind', { timeout: 300_000 }, async () => {
  for (let i = 0; i < 200; i++) {
    const socket = await connectGuestPort(paths.uds, GUEST_ECHO_PORT);
    const reply = await echoThrough(socket, Buffer.from(`ping ${i}\n`));
    assert.equal(reply.toString(), `ping ${i}\n`);
    await new Promise<void>((resolve) =>
      socket.closed ? resolve() : socket.once('close', () => resolve()),
    );
  }
  // Our SSH session is a vsock connection too: close it so the device should hold nothing.
  ssh!.close();
  // Closing is asynchronous on both sides (SHUTDOWN, then RST): give it a moment to settle.
  let stats: Record<string, unknown> = {};
  for (let attempt = 0; attempt < 50; attempt++) {
    stats = await servers.vsock.stats();
    if (stats.connections === 0 && stats.openSockets === 0 && stats.localPorts === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const field of [
    'connections',
    'pendingClients',
    'localPorts',
    'openSockets',
    'pendingRxBytes',
  ]) {
    assert.equal(
      stats[field],
      0,
      `vsock device ${field} after 200 connections: ${JSON.stringify(stats)}`,
    );
  }
  ssh = await GuestSsh.connect(paths.uds, key);
  assert.equal(
    await guest('ps -o comm | grep -cx cat || true'),
    '0\n',
    'no echo process left in the guest',
  );
});
