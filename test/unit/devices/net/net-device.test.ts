// virtio-net against virtio 1.2 section 5.1, driven through VirtqDriver (the guest) with a fake
// passt on the other end of a real Unix socket: frames both ways through the real queue code,
// MRG_RXBUF merging, checksum completion, back-pressure both ways, and hostile rings.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  allocPrefixedFrame,
  FrameDecoder,
  FramePort,
  internetChecksum,
  LENGTH_PREFIX_BYTES,
  NET_HDR_BYTES,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VirtioNetDevice,
} from '../../../../core/devices/net/index.ts';
import {
  bit,
  hasFeature,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
} from '../../../../core/devices/virtio-device.ts';
import { GuestRam, VirtqDriver } from '../../../support/virtq-driver.ts';

const MAC = '52:54:00:12:34:56';
const dir = mkdtempSync(join(tmpdir(), 'berth-net-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let socketCount = 0;

/** Two ends of a Unix stream connection: the device's and the fake passt's. */
async function socketPair(): Promise<{ local: Socket; peer: Socket }> {
  const path = join(dir, `s${socketCount++}.sock`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const local = connect(path);
  const peer = await accepted;
  await new Promise<void>((resolve) =>
    local.connecting ? local.once('connect', resolve) : resolve(),
  );
  server.close();
  return { local, peer };
}

async function until(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** An Ethernet frame of `length` bytes: MACs, IPv4 ethertype, then a pattern from `seed`. */
function ethFrame(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 13) & 0xff;
  out.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0xfc, 0, 0, 0, 1, 0x08, 0x00]);
  return out;
}

function txHeader(flags = 0, csumStart = 0, csumOffset = 0): Uint8Array {
  const out = new Uint8Array(NET_HDR_BYTES);
  const view = new DataView(out.buffer);
  out[0] = flags;
  view.setUint16(6, csumStart, true);
  view.setUint16(8, csumOffset, true);
  return out;
}

interface HarnessOptions {
  size?: number;
  features?: bigint;
  maxBufferedBytes?: number;
  checksumOffload?: boolean;
}

async function harness(options: HarnessOptions = {}) {
  const size = options.size ?? 64;
  const ram = new GuestRam({ size: 32 << 20 });
  const rx = new VirtqDriver(ram, { size, eventIdx: true });
  const tx = new VirtqDriver(ram, { size, eventIdx: true });
  const device = new VirtioNetDevice({
    mac: MAC,
    ...(options.checksumOffload === false ? { checksumOffload: false } : {}),
  });
  const interrupts = [0, 0];
  const resets: string[] = [];
  device.activate({
    memory: ram.memory,
    queues: [rx.createQueue(), tx.createQueue()],
    features: options.features ?? device.features,
    interrupt: (index) => interrupts[index]!++,
    needsReset: (reason) => resets.push(reason),
  });
  const { local, peer } = await socketPair();
  const port = new FramePort(
    local,
    options.maxBufferedBytes ? { maxBufferedBytes: options.maxBufferedBytes } : {},
  );
  device.attach(port);
  const decoder = new FrameDecoder();
  const received: Uint8Array[] = [];
  peer.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let f = decoder.peek(); f !== null; f = decoder.peek()) {
      received.push(Uint8Array.from(f));
      decoder.shift();
    }
  });
  const send = (frame: Uint8Array) => {
    const prefixed = allocPrefixedFrame(frame.length);
    prefixed.set(frame, LENGTH_PREFIX_BYTES);
    peer.write(prefixed);
  };
  const close = () => {
    port.close();
    peer.destroy();
  };
  return { ram, rx, tx, device, port, peer, received, send, interrupts, resets, close };
}

/** The frame the guest got in rx chains `chains` (header stripped), and the header. */
function reassemble(
  driver: VirtqDriver,
  used: { id: number; len: number }[],
  submitted: Map<number, Parameters<VirtqDriver['written']>[0]>,
): { header: Uint8Array; frame: Uint8Array } {
  const parts = used.map((u) => driver.written(submitted.get(u.id)!, u.len));
  const all = Buffer.concat(parts);
  return { header: all.subarray(0, NET_HDR_BYTES), frame: all.subarray(NET_HDR_BYTES) };
}

describe('virtio-net', () => {
  test('identity, features, config space', () => {
    const device = new VirtioNetDevice({ mac: MAC });
    assert.equal(device.type, VirtioDeviceType.net);
    assert.equal(device.queueCount, 2);
    for (const feature of [
      VIRTIO_F_VERSION_1,
      VIRTIO_F_EVENT_IDX,
      VIRTIO_NET_F_MRG_RXBUF,
      VIRTIO_NET_F_MTU,
      VIRTIO_NET_F_MAC,
      VIRTIO_NET_F_STATUS,
      VIRTIO_NET_F_CSUM,
      VIRTIO_NET_F_GUEST_CSUM,
    ]) {
      assert.ok(hasFeature(device.features, feature), `feature ${feature}`);
    }
    const config = device.config();
    assert.deepEqual([...config.subarray(0, 6)], [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const view = new DataView(config.buffer, config.byteOffset);
    assert.equal(view.getUint16(6, true), 1, 'status LINK_UP');
    assert.equal(view.getUint16(8, true), 1, 'one queue pair');
    assert.equal(view.getUint16(10, true), 65520, 'mtu');
    const plain = new VirtioNetDevice({ mac: MAC, checksumOffload: false, mtu: 1500 });
    assert.ok(!hasFeature(plain.features, VIRTIO_NET_F_CSUM));
    assert.throws(() => new VirtioNetDevice({ mac: '01:00:00:00:00:00' }), RangeError);
    assert.throws(() => new VirtioNetDevice({ mac: 'nope' }), RangeError);
    assert.throws(() => new VirtioNetDevice({ mac: MAC, mtu: 70000 }), RangeError);
  });

  test('tx: frames reach passt whole, however the guest splits header and frame', async () => {
    const h = await harness();
    try {
      const frames = [ethFrame(60, 1), ethFrame(1514, 2), ethFrame(65534, 3)];
      h.tx.submit({ readable: [txHeader(), frames[0]!] });
      const joined = Buffer.concat([txHeader(), frames[1]!]);
      h.tx.submit({
        readable: [joined.subarray(0, 5), joined.subarray(5, 700), joined.subarray(700)],
      });
      h.tx.submit({ readable: [Buffer.concat([txHeader(), frames[2]!])], indirect: true });
      h.device.notify(1);
      await until('three frames at passt', () => h.received.length === 3);
      assert.deepEqual(h.received, frames);
      const used = h.tx.takeUsed();
      assert.equal(used.length, 3);
      assert.ok(used.every((u) => u.len === 0));
      assert.equal(h.interrupts[1], 1, 'one interrupt for the batch');
      assert.equal(h.device.stats().txFrames, 3);
    } finally {
      h.close();
    }
  });

  test('tx: a partial checksum is completed when CSUM was negotiated', async () => {
    const h = await harness();
    try {
      // A UDP-like payload from offset 34, checksum field at 34 + 6, seeded with a pseudo sum.
      const frame = ethFrame(1000, 9);
      frame[40] = 0x12;
      frame[41] = 0x34;
      h.tx.submit({ readable: [txHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, 34, 6), frame] });
      h.device.notify(1);
      await until('the frame', () => h.received.length === 1);
      const out = h.received[0]!;
      // The receiver adds the pseudo-header (here the seed, 0x1234) to the covered range's sum
      // and must get all ones: so the range alone checks to the seed.
      assert.equal(internetChecksum(out.subarray(34)), 0x1234);
      assert.deepEqual(out.subarray(0, 40), frame.subarray(0, 40));
      assert.deepEqual(out.subarray(42), frame.subarray(42));
    } finally {
      h.close();
    }
  });

  test('tx: bad chains are returned and dropped, and the queue carries on', async () => {
    const h = await harness({
      features: new VirtioNetDevice({ mac: MAC }).features & ~bit(VIRTIO_NET_F_CSUM),
    });
    try {
      h.tx.submit({ readable: [new Uint8Array(8)] }); // shorter than the header
      h.tx.submit({ readable: [txHeader(), new Uint8Array(10)] }); // frame under 14 bytes
      h.tx.submit({ readable: [txHeader(), new Uint8Array(65536)] }); // over 65535
      h.tx.submit({ writable: [2000] }); // wrong direction
      h.tx.submit({ readable: [txHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, 34, 6), ethFrame(100)] }); // no CSUM
      const gso = txHeader();
      gso[1] = 1; // GSO_TCPV4, never offered
      h.tx.submit({ readable: [gso, ethFrame(100)] });
      // A descriptor outside guest memory, and a NEXT loop.
      const outside = h.tx.add({ readable: [txHeader()] });
      h.tx.writeDescriptor(outside.head, { addr: 0xffff_0000_0000, len: 100, flags: 0, next: 0 });
      const loop = h.tx.add({ readable: [txHeader(), ethFrame(60)] });
      h.tx.writeDescriptor(loop.descriptors[1]!, {
        ...h.tx.readDescriptor(loop.descriptors[1]!),
        flags: 1,
        next: loop.descriptors[0]!,
      });
      h.tx.publish();
      h.tx.submit({ readable: [txHeader(), ethFrame(60, 5)] }); // and a good one after it all
      h.device.notify(1);
      await until('the good frame', () => h.received.length === 1);
      assert.deepEqual(h.received[0], ethFrame(60, 5));
      assert.equal(h.tx.takeUsed().length, 9);
      const stats = h.device.stats();
      assert.deepEqual(stats.txDropped, { short: 2, size: 2, gso: 1, checksum: 1, noPeer: 0 });
      assert.equal(stats.badTxChains, 2);
      assert.deepEqual(h.resets, []);
    } finally {
      h.close();
    }
  });

  test('rx with MRG_RXBUF: a 64 KiB frame spans page-sized buffers, num_buffers says how many', async () => {
    const h = await harness();
    try {
      const chains = new Map<number, ReturnType<VirtqDriver['add']>>();
      for (let i = 0; i < 20; i++) {
        const chain = h.rx.add({ writable: [4096] });
        chains.set(chain.head, chain);
      }
      h.rx.publish();
      h.device.notify(0);
      const big = ethFrame(65534, 7);
      const small = ethFrame(60, 8);
      h.send(big);
      h.send(small);
      await until('both frames in the used ring', () => h.rx.usedIdx === 18);
      const used = h.rx.takeUsed();
      // 12 + 65534 bytes need 17 buffers of 4096; the small frame takes one.
      assert.equal(used.length, 18);
      const first = reassemble(h.rx, used.slice(0, 17), chains);
      const header = new DataView(first.header.buffer, first.header.byteOffset);
      assert.equal(header.getUint16(10, true), 17, 'num_buffers');
      assert.equal(first.header[0], VIRTIO_NET_HDR_F_DATA_VALID, 'GUEST_CSUM: DATA_VALID');
      assert.deepEqual(new Uint8Array(first.frame), big);
      assert.deepEqual(
        used.slice(0, 17).map((u) => u.len),
        [...Array<number>(16).fill(4096), 12 + 65534 - 16 * 4096],
      );
      const second = reassemble(h.rx, used.slice(17), chains);
      assert.equal(
        new DataView(second.header.buffer, second.header.byteOffset).getUint16(10, true),
        1,
      );
      assert.deepEqual(new Uint8Array(second.frame), small);
      assert.ok(h.interrupts[0]! >= 1);
      assert.equal(h.device.stats().rxFrames, 2);
    } finally {
      h.close();
    }
  });

  test('rx without MRG_RXBUF: one chain per frame, too-big frames dropped', async () => {
    const device = new VirtioNetDevice({ mac: MAC });
    const h = await harness({
      features: device.features & ~bit(VIRTIO_NET_F_MRG_RXBUF) & ~bit(VIRTIO_NET_F_GUEST_CSUM),
    });
    try {
      const a = h.rx.submit({ writable: [1526] });
      const b = h.rx.submit({ writable: [1526] });
      h.device.notify(0);
      h.send(ethFrame(3000, 1)); // cannot fit a 1526-byte buffer: dropped
      h.send(ethFrame(1514, 2));
      await until('the fitting frame', () => h.rx.usedIdx === 1);
      const [used] = h.rx.takeUsed();
      assert.equal(used!.id, a.head);
      assert.equal(used!.len, 12 + 1514);
      const bytes = h.rx.written(a, used!.len);
      assert.equal(bytes[0], 0, 'no DATA_VALID without GUEST_CSUM');
      assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint16(10, true), 1);
      assert.deepEqual(bytes.subarray(12), ethFrame(1514, 2));
      assert.equal(h.device.stats().rxDroppedTooBig, 1);
      assert.ok(b.head !== a.head);
    } finally {
      h.close();
    }
  });

  test('rx back-pressure: frames wait for buffers, and reading stops past the bound', async () => {
    const h = await harness({ maxBufferedBytes: 256 * 1024 });
    try {
      const frame = ethFrame(65534, 3);
      // passt writes far more than the bound while the guest has posted nothing.
      for (let i = 0; i < 64; i++) h.send(frame);
      await until('the port to fill', () => h.port.bufferedBytes > 256 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(
        h.port.bufferedBytes < 256 * 1024 + 2 * 65536 + 65536,
        `buffered ${h.port.bufferedBytes} bytes`,
      );
      assert.equal(h.device.stats().rxFrames, 0);
      // The guest posts buffers; every frame arrives, in order, as buffers keep coming.
      let delivered = 0;
      const posted = new Map<number, ReturnType<VirtqDriver['add']>>();
      while (delivered < 64) {
        while (h.rx.freeDescriptors > 0) {
          const chain = h.rx.add({ writable: [16384] });
          posted.set(chain.head, chain);
        }
        h.rx.publish();
        h.device.notify(0);
        await new Promise((resolve) => setTimeout(resolve, 5));
        const used = h.rx.takeUsed();
        for (let i = 0; i < used.length;) {
          const first = h.rx.written(posted.get(used[i]!.id)!, NET_HDR_BYTES);
          const count = new DataView(first.buffer, first.byteOffset).getUint16(10, true);
          const got = reassemble(h.rx, used.slice(i, i + count), posted);
          assert.deepEqual(new Uint8Array(got.frame), frame);
          for (const u of used.slice(i, i + count)) {
            h.rx.release(posted.get(u.id)!);
            posted.delete(u.id);
          }
          i += count;
          delivered++;
        }
      }
      assert.equal(h.device.stats().rxFrames, 64);
      assert.equal(h.port.bufferedBytes, 0);
    } finally {
      h.close();
    }
  });

  test('tx back-pressure: while passt does not read, frames stay in the ring', async () => {
    const h = await harness({ size: 256 });
    try {
      h.peer.pause();
      const frame = ethFrame(65534, 4);
      const payload = Buffer.concat([txHeader(), frame]);
      const submitted = 200;
      for (let i = 0; i < submitted; i++) h.tx.add({ readable: [payload] });
      h.tx.publish();
      h.device.notify(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      h.device.notify(1); // a kick while blocked changes nothing
      const taken = h.tx.takeUsed().length;
      assert.ok(h.port.blocked, 'the port is blocked');
      assert.ok(taken < submitted, `the device took ${taken} of ${submitted} chains`);
      assert.equal(h.device.stats().txDropped.noPeer, 0);
      // passt reads again: everything arrives, nothing was dropped.
      h.peer.resume();
      await until('all frames at passt', () => h.received.length === submitted, 20_000);
      assert.ok(h.received.every((f) => Buffer.compare(f, frame) === 0));
      assert.equal(h.device.stats().txFrames, submitted);
    } finally {
      h.close();
    }
  });

  test('rx: malformed and wrong-direction chains are returned empty', async () => {
    const h = await harness();
    try {
      h.rx.submit({ readable: [100] }); // device-readable only: wrong direction
      const outside = h.rx.add({ writable: [100] });
      h.rx.writeDescriptor(outside.head, { addr: 0x7fff_0000_0000, len: 100, flags: 2, next: 0 });
      h.rx.publish();
      h.rx.submit({ writable: [8] }); // smaller than the header
      const good = h.rx.submit({ writable: [2048] });
      h.device.notify(0);
      h.send(ethFrame(100, 6));
      await until('the frame', () => h.device.stats().rxFrames === 1);
      const used = h.rx.takeUsed();
      assert.equal(used.length, 4);
      assert.deepEqual(
        used.slice(0, 3).map((u) => u.len),
        [0, 0, 0],
      );
      assert.equal(used[3]!.id, good.head);
      assert.equal(h.device.stats().badRxChains, 3);
      assert.deepEqual(h.resets, []);
    } finally {
      h.close();
    }
  });

  test('a broken ring asks for a reset instead of throwing', async () => {
    const h = await harness();
    try {
      h.ram.setU16(h.tx.fields.availIdx, 1000); // far more entries than the queue has
      h.device.notify(1);
      assert.equal(h.resets.length, 1);
      assert.match(h.resets[0]!, /virtio-net: queue 1: avail idx/);
    } finally {
      h.close();
    }
  });

  test('a corrupt stream from passt closes the port; tx frames are then dropped', async () => {
    const h = await harness();
    try {
      let closed = '';
      h.port.onClose = (reason) => {
        closed = reason;
        h.device.detach(h.port);
      };
      h.peer.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
      await until('the port to close', () => closed !== '');
      assert.match(closed, /corrupt/);
      h.tx.submit({ readable: [txHeader(), ethFrame(60)] });
      h.device.notify(1);
      assert.equal(h.tx.takeUsed().length, 1, 'the guest gets its buffer back');
      assert.equal(h.device.stats().txDropped.noPeer, 1);
      assert.equal(h.device.stats().peer, false);
    } finally {
      h.close();
    }
  });
});
