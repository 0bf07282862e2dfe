// virtio-blk against hostile rings: well-formed requests with random fields mixed with random
// descriptors, avail entries, avail idx and ring addresses. For every ring: notify() never throws,
// raises at most one interrupt, completes every chain it popped unless it asked for a reset,
// never grows the disk file, and afterwards the same device serves a clean ring correctly.
//
// Reproduce a failure with the seed and round it prints:
//   BLK_FUZZ_SEED=<seed> BLK_FUZZ_ROUND=<round> node --import tsx --test <this file>
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VirtioBlkDevice,
} from '../../../core/devices/blk/index.ts';
import { SplitQueue, type QueueLayout } from '../../../core/devices/queue/index.ts';
import { GuestRam, VirtqDriver } from '../../support/virtq-driver.ts';

const ROUNDS = 3000;
const SEED = Number(process.env.BLK_FUZZ_SEED ?? 0xb10c_f422);
const ONLY = process.env.BLK_FUZZ_ROUND === undefined ? null : Number(process.env.BLK_FUZZ_ROUND);
const DISK_BYTES = 256 * 1024;
const CAPACITY = DISK_BYTES / 512;

/** mulberry32. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    u16: () => Math.floor(next() * 0x10000),
    u32: () => Math.floor(next() * 0x1_0000_0000),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Rng = ReturnType<typeof prng>;

const TYPES = [
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_WRITE_ZEROES,
  2,
  0xffffffff,
];

function header(type: number, sector: bigint): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt.asUintN(64, sector), true);
  return bytes;
}

function randomSector(rng: Rng): bigint {
  switch (rng.int(4)) {
    case 0:
      return BigInt(rng.int(CAPACITY));
    case 1:
      return BigInt(CAPACITY - rng.int(4));
    case 2:
      return BigInt(rng.u32()) * 0x1_0000_0000n + BigInt(rng.u32());
    default:
      return 0n;
  }
}

function randomSegments(rng: Rng): Uint8Array {
  const count = rng.int(4);
  const bytes = new Uint8Array(count * 16 + (rng.chance(0.1) ? rng.int(16) : 0));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) {
    view.setBigUint64(i * 16, randomSector(rng), true);
    view.setUint32(i * 16 + 8, rng.chance(0.8) ? rng.int(64) : rng.u32(), true);
    view.setUint32(i * 16 + 12, rng.chance(0.8) ? rng.int(2) : rng.u32(), true);
  }
  return bytes;
}

const dir = mkdtempSync(join(tmpdir(), 'berth-blk-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test(`virtio-blk survives ${ROUNDS} hostile rings (seed ${SEED})`, () => {
  const path = join(dir, 'disk.img');
  writeFileSync(path, '');
  truncateSync(path, DISK_BYTES);
  const device = new VirtioBlkDevice({ path, serial: 'fuzz' });
  const stats = { requests: 0, resets: 0, interrupts: 0 };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      if (ONLY !== null && round !== ONLY) continue;
      try {
        runRound(device, prng(SEED + round), stats);
      } catch (error) {
        throw new Error(`seed ${SEED} round ${round}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  } finally {
    device.close();
  }
  assert.equal(statSync(path).size, DISK_BYTES, 'the disk file never grows');
  if (ONLY === null) {
    assert.ok(stats.requests > ROUNDS, `requests completed: ${stats.requests}`);
    assert.ok(stats.resets > 0, 'some rings were broken');
  }
});

function runRound(
  device: VirtioBlkDevice,
  rng: Rng,
  stats: { requests: number; resets: number; interrupts: number },
): void {
  const size = 1 << rng.int(6);
  const ram = new GuestRam({ size: 64 * 1024, base: rng.pick([0, 0x10000, 2 ** 40]) });
  const eventIdx = rng.chance(0.5);
  const driver = new VirtqDriver(ram, { size, eventIdx });

  // Requests a driver could send, with random fields.
  for (let i = rng.int(size + 1); i > 0 && driver.freeDescriptors > 0; i--) {
    const type = rng.pick(TYPES);
    const readable: Uint8Array[] = [header(type, randomSector(rng))];
    if (type === VIRTIO_BLK_T_OUT) readable.push(new Uint8Array(rng.pick([0, 512, 1024, 700])));
    if (type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES) {
      readable.push(randomSegments(rng));
    }
    const writable = [rng.pick([0, 512, 1024, 20, 300]), rng.pick([1, 1, 0, 3])].filter(
      (n) => n > 0,
    );
    const count = readable.length + writable.length;
    const indirect = rng.chance(0.3) || count > driver.freeDescriptors;
    if (indirect && count > size) continue;
    driver.add({ readable, writable, indirect });
  }
  driver.publish();

  // Garbage: descriptors, avail entries, avail idx, or the whole layout.
  const descriptors = rng.int(size + 1);
  for (let i = 0; i < descriptors; i++) {
    driver.writeDescriptor(rng.int(size), {
      addr: rng.chance(0.7) ? ram.base + rng.int(ram.bytes.length) : rng.u32() * 2 ** 20,
      len: rng.chance(0.7) ? rng.int(2048) : rng.u32(),
      flags: rng.int(8),
      next: rng.chance(0.8) ? rng.int(size) : rng.u16(),
    });
  }
  if (rng.chance(0.3))
    driver.setAvailEntry(rng.int(size), rng.chance(0.5) ? rng.int(size) : rng.u16());
  if (rng.chance(0.1)) driver.availIdx = rng.u16();
  let layout: QueueLayout = driver.layout;
  if (rng.chance(0.05)) {
    layout = { ...layout, usedRing: rng.chance(0.5) ? layout.usedRing + 2 : ram.end + 64 };
  }

  const queue = new SplitQueue(ram.memory, layout, { eventIdx });
  const interrupts: number[] = [];
  const resets: string[] = [];
  device.reset();
  device.activate({
    memory: ram.memory,
    queues: [queue],
    features: device.features,
    interrupt: (index) => interrupts.push(index),
    needsReset: (reason) => resets.push(reason),
  });
  assert.doesNotThrow(() => device.notify(0));
  assert.ok(interrupts.length <= 1, 'at most one interrupt per kick');
  assert.ok(resets.length <= 1, 'at most one reset request');
  if (resets.length === 0) {
    assert.equal(queue.broken, null);
    assert.equal(queue.inflightCount, 0, 'every popped chain was completed');
  } else {
    assert.notEqual(queue.broken, null, 'a reset only for a broken ring');
    stats.resets++;
  }
  stats.interrupts += interrupts.length;
  stats.requests += queue.nextUsed;

  // The same device, re-activated on a clean ring, still reads back what it writes.
  const clean = VirtqDriver.create({ size: 8, ramSize: 64 * 1024 });
  const cleanQueue = clean.createQueue();
  device.reset();
  device.activate({
    memory: clean.memory,
    queues: [cleanQueue],
    features: device.features,
    interrupt: () => {},
    needsReset: (reason) => assert.fail(`clean ring: ${reason}`),
  });
  const sector = BigInt(rng.int(CAPACITY));
  const data = Uint8Array.from({ length: 512 }, () => rng.int(256));
  const write = clean.submit({ readable: [header(VIRTIO_BLK_T_OUT, sector), data], writable: [1] });
  const read = clean.submit({ readable: [header(VIRTIO_BLK_T_IN, sector)], writable: [512, 1] });
  device.notify(0);
  assert.deepEqual(
    clean.takeUsed().map((u) => u.id),
    [write.head, read.head],
  );
  const reply = clean.written(read);
  assert.equal(reply[512], VIRTIO_BLK_S_OK);
  assert.deepEqual(reply.subarray(0, 512), data);
}
