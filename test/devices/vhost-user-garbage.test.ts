// An untrusted guest cannot take a device back-end down: we play QEMU and a hostile guest
// against the real back-end processes over vhost-user, fill their rings with garbage, kick them
// many times, and then check that each process is alive, still answers, and serves a
// well-formed request once the ring is restarted.
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DeviceServer, type DeviceServerSpec } from '../../core/backends/qemu/device-servers.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  bit,
} from '../../core/devices/virtio-device.ts';
import { VhostUserFrontend } from '../support/vhost-user-frontend.ts';
import { VirtqDriver } from '../support/virtq-driver.ts';

const work = mkdtempSync(join(tmpdir(), 'berth-garbage-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ROUNDS = 300;
const ACCEPT = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);

/** The used entries the device returns, after its interrupt (deadline 5 s). */
async function waitUsed(frontend: VhostUserFrontend, driver: VirtqDriver) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    await frontend.waitCall(100);
    const used = driver.takeUsed();
    if (used.length > 0) return used;
  }
  throw new Error('the device did not complete the request within 5 s');
}

async function hammer(spec: DeviceServerSpec) {
  const server = await DeviceServer.start(spec);
  const frontend = new VhostUserFrontend(spec.socket);
  try {
    const driver = new VirtqDriver(frontend.ram, { size: 64 });
    await frontend.start(driver, ACCEPT);
    const { descTable, availRing } = driver.layout;
    for (let round = 0; round < ROUNDS; round++) {
      // Garbage descriptors (addresses anywhere, lengths up to 4 GiB, random flags and nexts) and
      // a garbage avail ring (random heads, random idx), sometimes with a sane idx step.
      randomFillSync(frontend.ram.bytes, descTable - frontend.ram.base, 64 * 16);
      randomFillSync(frontend.ram.bytes, availRing - frontend.ram.base, 4 + 64 * 2);
      if (round % 3 === 0) driver.availIdx = (driver.usedIdx + 1 + (round % 5)) & 0xffff;
      frontend.kick();
      if (round % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(server.exitCode, null, `the ${spec.device} back-end died:\n${server.output}`);
    assert.equal(
      frontend.backendClosed,
      false,
      `the ${spec.device} back-end dropped the connection`,
    );
    // Still answering the protocol...
    assert.ok((await frontend.features()) & bit(VIRTIO_F_VERSION_1));
    // ...and after a ring restart (as QEMU does after a device reset) it serves clean requests.
    await frontend.stopRing();
    frontend.ram.bytes.fill(0, driver.layout.descTable - frontend.ram.base);
    const clean = new VirtqDriver(frontend.ram, { size: 64 });
    await frontend.startRing(clean);
    frontend.drainCalls();
    return { server, frontend, driver: clean };
  } catch (error) {
    frontend.close();
    await server.stop();
    throw error;
  }
}

test(
  'virtio-blk survives a hostile ring and then reads a sector',
  { timeout: 60_000 },
  async () => {
    const disk = join(work, 'disk.img');
    const content = Buffer.alloc(1 << 20);
    content.write('berth sector 3', 3 * 512);
    writeFileSync(disk, content);
    const { server, frontend, driver } = await hammer({
      device: 'blk',
      socket: join(work, 'blk.sock'),
      disk,
    });
    try {
      const header = Buffer.alloc(16);
      header.writeUInt32LE(0, 0); // VIRTIO_BLK_T_IN
      header.writeBigUInt64LE(3n, 8);
      const request = driver.submit({ readable: [header], writable: [512, 1] });
      frontend.kick();
      const all = await waitUsed(frontend, driver);
      assert.equal(all[0]?.id, request.head, `used entries ${JSON.stringify(all)}`);
      const reply = Buffer.from(driver.written(request));
      assert.equal(reply.subarray(0, 14).toString(), 'berth sector 3');
      assert.equal(reply[512], 0, 'status OK');
    } finally {
      frontend.close();
      await server.stop();
    }
  },
);

test(
  'virtio-rng survives a hostile ring and then gives random bytes',
  { timeout: 60_000 },
  async () => {
    const { server, frontend, driver } = await hammer({
      device: 'rng',
      socket: join(work, 'rng.sock'),
    });
    try {
      const request = driver.submit({ writable: [64] });
      frontend.kick();
      assert.ok(await frontend.waitCall());
      const [used] = driver.takeUsed();
      assert.equal(used?.len, 64);
      assert.notDeepEqual(Buffer.from(driver.written(request)), Buffer.alloc(64));
    } finally {
      frontend.close();
      await server.stop();
    }
  },
);

test('virtio-vsock survives hostile rx and tx rings', { timeout: 60_000 }, async () => {
  const { server, frontend } = await hammer({
    device: 'vsock',
    socket: join(work, 'vsock.sock'),
    guestCid: 3,
    uds: join(work, 'v.sock'),
  });
  try {
    assert.equal(server.exitCode, null);
  } finally {
    frontend.close();
    await server.stop();
  }
});
