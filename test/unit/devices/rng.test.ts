// virtio-rng against virtio 1.2 section 5.4, driven through VirtqDriver.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VirtioRngDevice, type VirtioRngOptions } from '../../../core/devices/rng/index.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  bit,
} from '../../../core/devices/virtio-device.ts';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VirtqDriver } from '../../support/virtq-driver.ts';

function harness(options: VirtioRngOptions & { size?: number; eventIdx?: boolean } = {}) {
  const device = new VirtioRngDevice(options);
  const driver = VirtqDriver.create({ size: options.size ?? 16, eventIdx: options.eventIdx });
  const queue = driver.createQueue();
  const interrupts: number[] = [];
  const resets: string[] = [];
  device.activate({
    memory: driver.memory,
    queues: [queue],
    features: device.features,
    interrupt: (index) => interrupts.push(index),
    needsReset: (reason) => resets.push(reason),
  });
  const run = () => {
    device.notify(0);
    return driver.takeUsed();
  };
  return { device, driver, queue, interrupts, resets, run };
}

/** Distinct byte values: random bytes have many, a constant or a counter pattern few or all. */
function distinct(bytes: Uint8Array): number {
  return new Set(bytes).size;
}

describe('virtio-rng', () => {
  test('identity, features, empty config', () => {
    const device = new VirtioRngDevice();
    assert.equal(device.type, VirtioDeviceType.entropy);
    assert.equal(device.name, 'virtio-rng');
    assert.equal(device.queueCount, 1);
    assert.equal(
      device.features,
      bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC),
    );
    assert.equal(device.config().length, 0);
    assert.throws(() => new VirtioRngDevice({ maxBytesPerRequest: 0 }), RangeError);
  });

  test('random bytes arrive in every writable buffer, and the used length counts them', () => {
    const h = harness();
    const chain = h.driver.submit({ writable: [64, 1, 300] });
    assert.deepEqual(h.run(), [{ id: chain.head, len: 365 }]);
    const bytes = h.driver.written(chain);
    assert.ok(distinct(bytes) > 150, `${distinct(bytes)} distinct values in 365 random bytes`);
    assert.ok(bytes.subarray(0, 64).some((b) => b !== 0));
    assert.equal(h.interrupts.length, 1);

    // Two requests do not get the same bytes.
    const a = h.driver.submit({ writable: [32] });
    const b = h.driver.submit({ writable: [32], indirect: true });
    assert.equal(h.run().length, 2);
    assert.notDeepEqual(h.driver.written(a), h.driver.written(b));
  });

  test('a request gets at most maxBytesPerRequest bytes', () => {
    const h = harness({ maxBytesPerRequest: 100 });
    const chain = h.driver.submit({ writable: [64, 64] });
    assert.deepEqual(h.run(), [{ id: chain.head, len: 100 }]);
    const bytes = h.driver.written(chain);
    assert.deepEqual(bytes.subarray(100), new Uint8Array(28), 'nothing past the cap');

    const big = harness();
    const large = big.driver.submit({ writable: [100_000] });
    assert.deepEqual(big.run(), [{ id: large.head, len: 64 * 1024 }]);
  });

  test('a chain with no writable buffer completes with 0 bytes, its buffers untouched', () => {
    const h = harness();
    const data = Uint8Array.from({ length: 16 }, (_, i) => i);
    const chain = h.driver.submit({ readable: [data] });
    assert.deepEqual(h.run(), [{ id: chain.head, len: 0 }]);
    assert.deepEqual(h.driver.ram.read(chain.readable[0]!.addr, 16), data);
    // Readable buffers before writable ones are skipped, not filled.
    const mixed = h.driver.submit({ readable: [data], writable: [8] });
    assert.deepEqual(h.run(), [{ id: mixed.head, len: 8 }]);
    assert.deepEqual(h.driver.ram.read(mixed.readable[0]!.addr, 16), data);
  });

  test('a batch of requests gets one interrupt; suppression is honoured', () => {
    const h = harness();
    for (let i = 0; i < 12; i++) h.driver.add({ writable: [16] });
    h.driver.publish();
    assert.equal(h.run().length, 12);
    assert.equal(h.interrupts.length, 1);

    h.driver.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    h.driver.submit({ writable: [16] });
    assert.equal(h.run().length, 1);
    assert.equal(h.interrupts.length, 1);

    const e = harness({ eventIdx: true });
    e.driver.usedEvent = 2;
    e.driver.submit({ writable: [8] });
    e.run();
    assert.equal(e.interrupts.length, 0, 'used idx 1 has not passed used_event 2');
    e.driver.submit({ writable: [8] });
    e.driver.submit({ writable: [8] });
    e.run();
    assert.equal(e.interrupts.length, 1);
  });

  test('a malformed chain completes with 0; a broken ring asks for a reset; nothing throws', () => {
    const h = harness();
    const bad = h.driver.add({ writable: [16] });
    h.driver.writeDescriptor(bad.head, { addr: 0x7fff_0000, len: 16, flags: 2, next: 0 });
    const good = h.driver.add({ writable: [16] });
    h.driver.publish();
    assert.deepEqual(
      h.run().map((u) => [u.id, u.len]),
      [
        [bad.head, 0],
        [good.head, 16],
      ],
    );
    assert.deepEqual(h.resets, []);

    h.driver.availIdx = h.driver.availIdx + 100;
    assert.doesNotThrow(() => h.device.notify(0));
    assert.equal(h.resets.length, 1);
    assert.match(h.resets[0]!, /^virtio-rng: /);
  });

  test('a failing entropy source asks for a reset instead of throwing', () => {
    const h = harness({
      fill: () => {
        throw new Error('no entropy');
      },
    });
    h.driver.submit({ writable: [16] });
    assert.doesNotThrow(() => h.device.notify(0));
    assert.deepEqual(h.resets, ['virtio-rng: entropy source failed: no entropy']);
  });

  test('reset forgets the queue until the next activate', () => {
    const h = harness();
    h.device.reset();
    h.driver.submit({ writable: [16] });
    assert.equal(h.run().length, 0);
    h.device.activate({
      memory: h.driver.memory,
      queues: [h.queue],
      features: h.device.features,
      interrupt: (index) => h.interrupts.push(index),
      needsReset: (reason) => h.resets.push(reason),
    });
    assert.equal(h.run().length, 1);
  });
});
