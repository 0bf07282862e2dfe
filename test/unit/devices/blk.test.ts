// virtio-blk against virtio 1.2 section 5.2, driven through VirtqDriver over a temporary sparse
// file: config space, the six request types, read-only mode, everything a driver can get wrong,
// host I/O errors, and batching with interrupt suppression.
import assert from 'node:assert/strict';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  BLK_CONFIG_SIZE,
  BlkConfigOffset,
  DEFAULT_BLK_LIMITS,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VirtioBlkDevice,
  nodeDiskFileOps,
  type DiskFileOps,
  type VirtioBlkOptions,
} from '../../../core/devices/blk/index.ts';
import type { SplitQueue } from '../../../core/devices/queue/index.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  bit,
  hasFeature,
} from '../../../core/devices/virtio-device.ts';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VirtqDriver,
  type BufferSpec,
  type SubmittedChain,
  type UsedElement,
} from '../../support/virtq-driver.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SECTOR = 512;
const dir = mkdtempSync(join(tmpdir(), 'berth-blk-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** A new sparse file of `size` bytes (nothing allocated). */
function sparseFile(size = 4 * MiB): string {
  const path = join(dir, `disk-${fileCount++}.img`);
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

function fileBytes(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const out = new Uint8Array(length);
    readSync(fd, out, 0, length, offset);
    return out;
  } finally {
    closeSync(fd);
  }
}

function allocatedBlocks(path: string): number {
  return statSync(path).blocks;
}

/** A recognisable pattern: different for every byte offset of the disk and every `seed`. */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

function header(type: number, sector: number | bigint = 0): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt.asUintN(64, BigInt(sector)), true);
  return bytes;
}

function segment(sector: number, sectors: number, flags = 0): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(sector), true);
  view.setUint32(8, sectors, true);
  view.setUint32(12, flags, true);
  return bytes;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Split `data` into pieces of the given lengths (the last takes the rest). */
function split(data: Uint8Array, lengths: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const length of lengths) {
    out.push(data.slice(at, at + length));
    at += length;
  }
  if (at < data.length) out.push(data.slice(at));
  return out;
}

interface HarnessOptions extends Partial<VirtioBlkOptions> {
  size?: number;
  queueSize?: number;
  eventIdx?: boolean;
  ramSize?: number;
  /** Features the driver accepts (default: all the device offers). */
  accept?: bigint;
}

/** A device on a fresh sparse file, activated on one queue driven by a VirtqDriver. */
function harness(options: HarnessOptions = {}) {
  const path = options.path ?? sparseFile(options.size);
  const device = new VirtioBlkDevice({ ...options, path });
  const driver = VirtqDriver.create({
    size: options.queueSize ?? 64,
    eventIdx: options.eventIdx,
    ramSize: options.ramSize ?? 16 * MiB,
  });
  const queue = driver.createQueue();
  const interrupts: number[] = [];
  const resets: string[] = [];
  device.activate({
    memory: driver.memory,
    queues: [queue],
    features: options.accept ?? device.features,
    interrupt: (index) => interrupts.push(index),
    needsReset: (reason) => resets.push(reason),
  });

  /** Kick, and return what came back in the used ring. */
  const run = (): UsedElement[] => {
    device.notify(0);
    return driver.takeUsed();
  };
  /** Submit one chain, kick, and return its used entry. */
  const one = (spec: Parameters<VirtqDriver['submit']>[0]) => {
    const chain = driver.submit(spec);
    const used = run();
    assert.equal(used.length, 1, 'one used entry');
    assert.equal(used[0]!.id, chain.head);
    return { chain, len: used[0]!.len, status: statusOf(chain) };
  };
  /** The status byte: the last writable byte of the chain. */
  const statusOf = (chain: SubmittedChain): number => {
    const last = chain.writable[chain.writable.length - 1]!;
    return driver.ram.read(last.addr + last.len - 1, 1)[0]!;
  };
  const read = (sector: number | bigint, lengths: readonly BufferSpec[], indirect = false) => {
    const result = one({
      readable: [header(VIRTIO_BLK_T_IN, sector)],
      writable: [...lengths, 1],
      indirect,
    });
    const total = result.chain.writable.reduce((n, b) => n + b.len, 0) - 1;
    return { ...result, data: driver.written(result.chain, total) };
  };
  const write = (sector: number | bigint, pieces: readonly Uint8Array[], indirect = false) =>
    one({ readable: [header(VIRTIO_BLK_T_OUT, sector), ...pieces], writable: [1], indirect });
  const simple = (type: number, data: readonly Uint8Array[] = []) =>
    one({ readable: [header(type), ...data], writable: [1] });

  return {
    path,
    device,
    driver,
    queue,
    interrupts,
    resets,
    run,
    one,
    read,
    write,
    simple,
    statusOf,
  };
}

/** DiskFileOps that record every call by name, then do the real thing unless overridden. */
function spyOps(overrides: Partial<DiskFileOps> = {}) {
  const calls: { name: string; args: unknown[] }[] = [];
  const ops = {} as Record<string, unknown>;
  for (const [name, real] of Object.entries({ ...nodeDiskFileOps, ...overrides })) {
    ops[name] = (...args: unknown[]) => {
      calls.push({ name, args });
      return (real as (...a: unknown[]) => unknown)(...args);
    };
  }
  return {
    ops: ops as unknown as DiskFileOps,
    calls,
    count: (name: string) => calls.filter((c) => c.name === name).length,
  };
}

function systemError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${syscall}: ${code}`), { code, syscall });
}

describe('virtio-blk: device and config space', () => {
  test('identity, features and the config layout', () => {
    const { device } = harness({ size: 3 * MiB + 700 });
    assert.equal(device.type, VirtioDeviceType.block);
    assert.equal(device.name, 'virtio-blk');
    assert.equal(device.queueCount, 1);
    assert.equal(device.maxQueueSize, 256);
    for (const f of [
      VIRTIO_F_VERSION_1,
      VIRTIO_F_EVENT_IDX,
      VIRTIO_F_INDIRECT_DESC,
      VIRTIO_BLK_F_SEG_MAX,
      VIRTIO_BLK_F_BLK_SIZE,
      VIRTIO_BLK_F_FLUSH,
      VIRTIO_BLK_F_DISCARD,
      VIRTIO_BLK_F_WRITE_ZEROES,
    ]) {
      assert.ok(hasFeature(device.features, f), `feature ${f}`);
    }
    assert.equal(hasFeature(device.features, VIRTIO_BLK_F_RO), false);

    const config = device.config();
    assert.equal(config.length, BLK_CONFIG_SIZE);
    const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
    // A size that is not a whole number of sectors: the tail is not part of the disk.
    assert.equal(device.capacity, (3 * MiB) / SECTOR + 1);
    assert.equal(view.getBigUint64(BlkConfigOffset.capacity, true), BigInt(device.capacity));
    assert.equal(view.getUint32(BlkConfigOffset.segMax, true), DEFAULT_BLK_LIMITS.segMax);
    assert.equal(view.getUint32(BlkConfigOffset.blkSize, true), 512);
    assert.equal(view.getUint16(BlkConfigOffset.numQueues, true), 1);
    assert.equal(
      view.getUint32(BlkConfigOffset.maxDiscardSectors, true),
      DEFAULT_BLK_LIMITS.maxDiscardSectors,
    );
    assert.equal(
      view.getUint32(BlkConfigOffset.maxDiscardSeg, true),
      DEFAULT_BLK_LIMITS.maxDiscardSegments,
    );
    assert.equal(view.getUint32(BlkConfigOffset.discardSectorAlignment, true), 8);
    assert.equal(
      view.getUint32(BlkConfigOffset.maxWriteZeroesSectors, true),
      DEFAULT_BLK_LIMITS.maxWriteZeroesSectors,
    );
    assert.equal(
      view.getUint32(BlkConfigOffset.maxWriteZeroesSeg, true),
      DEFAULT_BLK_LIMITS.maxWriteZeroesSegments,
    );
    assert.equal(view.getUint8(BlkConfigOffset.writeZeroesMayUnmap), 1);
    // Padding, and fields whose features are not offered, are zero.
    for (const offset of [8, 9, 10, 11, 16, 17, 18, 19, 24, 28, 32, 33, 57, 58, 59]) {
      assert.equal(config[offset], 0, `config byte ${offset}`);
    }
    const first = config[0];
    config[0] = first! ^ 0xff;
    assert.equal(device.config()[0], first, 'config() hands out a copy');
  });

  test('read-only mode offers RO and no discard or write-zeroes', () => {
    const { device } = harness({ readOnly: true });
    assert.ok(hasFeature(device.features, VIRTIO_BLK_F_RO));
    assert.equal(hasFeature(device.features, VIRTIO_BLK_F_DISCARD), false);
    assert.equal(hasFeature(device.features, VIRTIO_BLK_F_WRITE_ZEROES), false);
    assert.ok(hasFeature(device.features, VIRTIO_BLK_F_FLUSH));
  });

  test('the serial is checked: printable ASCII, at most 20 bytes', () => {
    const path = sparseFile();
    assert.throws(() => new VirtioBlkDevice({ path, serial: 'x'.repeat(21) }), RangeError);
    assert.throws(() => new VirtioBlkDevice({ path, serial: 'caf\u00e9' }), RangeError);
    assert.throws(() => new VirtioBlkDevice({ path, serial: 'a\0b' }), RangeError);
    new VirtioBlkDevice({ path, serial: 'x'.repeat(20) }).close();
  });

  test('a missing file or a directory fails the constructor', () => {
    assert.throws(() => new VirtioBlkDevice({ path: join(dir, 'missing.img') }), /ENOENT/);
    assert.throws(() => new VirtioBlkDevice({ path: dir }), /EISDIR/);
    assert.throws(() => new VirtioBlkDevice({ path: dir, readOnly: true }), /not a regular file/);
  });
});

describe('virtio-blk: reads and writes', () => {
  test('write then read back at various sectors, with multi-descriptor buffers', () => {
    const h = harness({ size: 8 * MiB });
    const capacity = h.device.capacity;
    const cases: {
      sector: number;
      writeSplit: number[];
      readSplit: number[];
      indirect: boolean;
    }[] = [
      { sector: 0, writeSplit: [512], readSplit: [512], indirect: false },
      { sector: 1, writeSplit: [100, 412, 1024], readSplit: [1536], indirect: false },
      { sector: 777, writeSplit: [4096, 4096], readSplit: [1, 511, 3000, 4680], indirect: true },
      {
        sector: 4096,
        writeSplit: [7, 9, 16, 480, 512],
        readSplit: [256, 256, 512],
        indirect: false,
      },
      { sector: capacity - 8, writeSplit: [2048, 2048], readSplit: [4096], indirect: true },
    ];
    cases.forEach(({ sector, writeSplit, readSplit, indirect }, n) => {
      const total = writeSplit.reduce((a, b) => a + b, 0);
      const data = pattern(total, n + 1);
      const w = h.write(sector, split(data, writeSplit), indirect);
      assert.equal(w.status, VIRTIO_BLK_S_OK, `write at ${sector}`);
      assert.equal(w.len, 1, 'a write writes only the status byte');
      assert.deepEqual(fileBytes(h.path, sector * SECTOR, total), data, `file at ${sector}`);

      const r = h.read(sector, readSplit, !indirect);
      assert.equal(r.status, VIRTIO_BLK_S_OK, `read at ${sector}`);
      assert.equal(r.len, total + 1, 'used length: data and status');
      assert.deepEqual(r.data, data, `read back at ${sector}`);
    });
    assert.deepEqual(h.interrupts.length, cases.length * 2);
    assert.deepEqual(h.resets, []);
  });

  test('1 MiB in one request, in 128 buffers of an indirect table', () => {
    const h = harness({ size: 8 * MiB, queueSize: 256 });
    const data = pattern(MiB, 9);
    assert.equal(h.write(2048, split(data, Array(128).fill(8 * KiB)), true).status, 0);
    const r = h.read(2048, Array(128).fill(8 * KiB), true);
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.deepEqual(r.data, data);
  });

  test('a sparse file reads as zeros, and so does anything past its end', () => {
    const h = harness({ size: MiB });
    const r = h.read(100, [4096, 1024]);
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.deepEqual(r.data, new Uint8Array(5120));

    // Someone shrinks the file under the device: the capacity stays, the lost tail reads as zeros.
    assert.equal(h.write(2040, [pattern(4096, 3)]).status, VIRTIO_BLK_S_OK);
    truncateSync(h.path, 2042 * SECTOR);
    const tail = h.read(2040, [1024, 3072]);
    assert.equal(tail.status, VIRTIO_BLK_S_OK);
    assert.equal(tail.len, 4097);
    const expected = new Uint8Array(4096);
    expected.set(pattern(4096, 3).subarray(0, 1024));
    assert.deepEqual(tail.data, expected);
  });

  test('the header may straddle buffers, and the status may share the last data buffer', () => {
    const h = harness();
    const data = pattern(1024, 5);
    const hdr = header(VIRTIO_BLK_T_OUT, 40);
    // Header split 3 + 13, the first data bytes glued to its end.
    const w = h.one({
      readable: [
        hdr.subarray(0, 3),
        concat([hdr.subarray(3), data.subarray(0, 100)]),
        data.subarray(100),
      ],
      writable: [1],
    });
    assert.equal(w.status, VIRTIO_BLK_S_OK);
    assert.deepEqual(fileBytes(h.path, 40 * SECTOR, 1024), data);

    // A read whose only writable buffer holds the data and the status.
    const r = h.one({ readable: [header(VIRTIO_BLK_T_IN, 40)], writable: [1025] });
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.equal(r.len, 1025);
    assert.deepEqual(h.driver.written(r.chain, 1024), data);
  });

  test('data moves between the file and guest memory views, never through a copy', () => {
    const spy = spyOps();
    const h = harness({ ops: spy.ops });
    h.write(8, [pattern(512, 1), pattern(512, 2)]);
    h.read(8, [512, 512]);
    h.read(8, [1024]);
    const io = spy.calls.filter((c) => ['read', 'readv', 'write', 'writev'].includes(c.name));
    assert.deepEqual(
      io.map((c) => c.name),
      ['writev', 'readv', 'read'],
    );
    for (const call of io) {
      const views = (call.name.endsWith('v') ? call.args[1] : [call.args[1]]) as Uint8Array[];
      for (const view of views) assert.equal(view.buffer, h.driver.ram.bytes.buffer, call.name);
    }
  });

  test('short reads and writes (preadv stopping early) are finished buffer by buffer', () => {
    // readv/writev that move only the first buffer, as preadv does at IOV_MAX.
    const spy = spyOps({
      readv: (fd, buffers, position) =>
        nodeDiskFileOps.read(fd, buffers[0]!, 0, buffers[0]!.length, position),
      writev: (fd, buffers, position) =>
        nodeDiskFileOps.write(fd, buffers[0]!, 0, buffers[0]!.length - 3, position),
    });
    const h = harness({ ops: spy.ops });
    const data = pattern(3 * 512, 4);
    assert.equal(h.write(16, split(data, [512, 512, 512])).status, VIRTIO_BLK_S_OK);
    assert.deepEqual(fileBytes(h.path, 16 * SECTOR, data.length), data);
    const r = h.read(16, [512, 512, 512]);
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.deepEqual(r.data, data);
    assert.ok(spy.count('read') >= 2 && spy.count('write') >= 2);
  });
});

describe('virtio-blk: flush, discard, write zeroes, get id', () => {
  test('flush calls fdatasync before it completes', () => {
    // The used idx the driver could see when fdatasync ran: the flush must not be visible yet.
    const usedIdxAtSync: number[] = [];
    const spy = spyOps({
      fdatasync: (fd) => {
        usedIdxAtSync.push(h.driver.usedIdx);
        nodeDiskFileOps.fdatasync(fd);
      },
    });
    const h: ReturnType<typeof harness> = harness({ ops: spy.ops });
    h.write(0, [pattern(512, 1)]);
    assert.equal(spy.count('fdatasync'), 0);
    const chain = h.driver.submit({ readable: [header(VIRTIO_BLK_T_FLUSH)], writable: [1] });
    assert.equal(h.driver.usedIdx, 1);
    h.device.notify(0);
    assert.equal(spy.count('fdatasync'), 1);
    assert.deepEqual(usedIdxAtSync, [1], 'fdatasync ran before the flush was published as used');
    assert.equal(h.driver.usedIdx, 2);
    const [used] = h.driver.takeUsed();
    assert.deepEqual(used, { id: chain.head, len: 1 });
    assert.equal(h.statusOf(chain), VIRTIO_BLK_S_OK);
  });

  test('a failing fdatasync is IOERR', () => {
    const spy = spyOps({
      fdatasync: () => {
        throw systemError('EIO', 'fdatasync');
      },
    });
    const h = harness({ ops: spy.ops });
    assert.equal(h.simple(VIRTIO_BLK_T_FLUSH).status, VIRTIO_BLK_S_IOERR);
  });

  test('discard punches holes: blocks are freed and the range reads as zeros', () => {
    const h = harness({ size: 4 * MiB });
    const data = pattern(2 * MiB, 6);
    for (let i = 0; i < 4; i++) {
      const part = data.subarray(i * 512 * KiB, (i + 1) * 512 * KiB);
      assert.equal(h.write(i * 1024, [part]).status, VIRTIO_BLK_S_OK);
    }
    const fd = openSync(h.path, 'r');
    fsyncSync(fd);
    const before = fstatSync(fd).blocks;
    closeSync(fd);

    // Two segments in one request: [256 KiB, 768 KiB) and [1 MiB, 1.5 MiB).
    const d = h.simple(VIRTIO_BLK_T_DISCARD, [segment(512, 1024), segment(2048, 1024)]);
    assert.equal(d.status, VIRTIO_BLK_S_OK);
    assert.equal(d.len, 1);
    const afterBlocks = allocatedBlocks(h.path);
    assert.ok(afterBlocks <= before - MiB / 512, `st_blocks ${before} -> ${afterBlocks}`);
    assert.equal(statSync(h.path).size, 4 * MiB, 'the size is kept');

    const r = h.read(0, [2 * MiB]);
    const expected = data.slice();
    expected.fill(0, 256 * KiB, 768 * KiB);
    expected.fill(0, MiB, 1.5 * MiB);
    assert.deepEqual(r.data, expected);
  });

  test('write zeroes with unmap punches a hole, without it uses zero-range', () => {
    const spy = spyOps();
    const h = harness({ ops: spy.ops });
    h.write(0, [pattern(MiB, 7)]);
    const fd = openSync(h.path, 'r');
    fsyncSync(fd);
    closeSync(fd);
    const full = allocatedBlocks(h.path);

    const keep = h.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(0, 512)]);
    assert.equal(keep.status, VIRTIO_BLK_S_OK);
    const unmap = h.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(1024, 512, 1)]);
    assert.equal(unmap.status, VIRTIO_BLK_S_OK);
    const modes = spy.calls.filter((c) => c.name === 'fallocate').map((c) => c.args.slice(1));
    assert.deepEqual(modes, [
      ['zero-range', 0, 256 * KiB],
      ['punch-hole', 512 * KiB, 256 * KiB],
    ]);
    const now = allocatedBlocks(h.path);
    assert.ok(now <= full - (256 * KiB) / 512, `unmap frees blocks: ${full} -> ${now}`);

    const expected = pattern(MiB, 7);
    expected.fill(0, 0, 256 * KiB);
    expected.fill(0, 512 * KiB, 768 * KiB);
    assert.deepEqual(h.read(0, [MiB]).data, expected);
  });

  test('write zeroes falls back to writing zeros where fallocate is not supported', () => {
    const spy = spyOps({
      fallocate: () => {
        throw systemError('EOPNOTSUPP', 'fallocate');
      },
    });
    const h = harness({ ops: spy.ops });
    h.write(0, [pattern(8192, 8)]);
    assert.equal(h.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(2, 4, 1)]).status, 0);
    const expected = pattern(8192, 8);
    expected.fill(0, 1024, 3072);
    assert.deepEqual(fileBytes(h.path, 0, 8192), expected);
    // And discard, being a hint, succeeds without doing anything.
    assert.equal(h.simple(VIRTIO_BLK_T_DISCARD, [segment(0, 4)]).status, VIRTIO_BLK_S_OK);
    assert.deepEqual(fileBytes(h.path, 0, 1024), expected.subarray(0, 1024));
  });

  test('get id returns the serial, NUL-padded to 20 bytes', () => {
    const h = harness({ serial: 'berth-data' });
    const r = h.one({ readable: [header(VIRTIO_BLK_T_GET_ID)], writable: [20, 1] });
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.equal(r.len, 21);
    const expected = new Uint8Array(20);
    expected.set(new TextEncoder().encode('berth-data'));
    assert.deepEqual(h.driver.written(r.chain, 20), expected);

    const full = harness({ serial: 'ABCDEFGHIJKLMNOPQRST' });
    const f = full.one({ readable: [header(VIRTIO_BLK_T_GET_ID)], writable: [8, 12, 1] });
    assert.equal(
      new TextDecoder().decode(full.driver.written(f.chain, 20)),
      'ABCDEFGHIJKLMNOPQRST',
    );

    // Less room than 20 bytes: as much as fits. No serial: all NULs.
    const short = harness({ serial: 'serial' });
    const s = short.one({ readable: [header(VIRTIO_BLK_T_GET_ID)], writable: [4, 1] });
    assert.equal(s.len, 5);
    assert.equal(new TextDecoder().decode(short.driver.written(s.chain, 4)), 'seri');
    const none = harness();
    const n = none.one({
      readable: [header(VIRTIO_BLK_T_GET_ID)],
      writable: [new Uint8Array(20).fill(0xee), 1],
    });
    assert.deepEqual(none.driver.written(n.chain, 20), new Uint8Array(20));
  });
});

describe('virtio-blk: read-only mode', () => {
  test('writes, discards and write zeroes fail with IOERR and the file is unchanged', () => {
    const path = sparseFile(MiB);
    const original = pattern(MiB, 11);
    writeFileSync(path, original);
    const h = harness({ path, readOnly: true, accept: bit(VIRTIO_F_VERSION_1) });

    assert.equal(h.write(0, [pattern(4096, 1)]).status, VIRTIO_BLK_S_IOERR);
    assert.equal(h.write(100, [pattern(512, 2)], true).status, VIRTIO_BLK_S_IOERR);
    assert.equal(h.simple(VIRTIO_BLK_T_DISCARD, [segment(0, 8)]).status, VIRTIO_BLK_S_IOERR);
    const wz = h.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(0, 8, 1)]);
    assert.equal(wz.status, VIRTIO_BLK_S_IOERR);
    assert.equal(wz.len, 1);
    assert.deepEqual(new Uint8Array(readFileSync(path)), original);

    // Reads and flushes still work.
    const r = h.read(2, [1024]);
    assert.equal(r.status, VIRTIO_BLK_S_OK);
    assert.deepEqual(r.data, original.subarray(1024, 2048));
    assert.equal(h.simple(VIRTIO_BLK_T_FLUSH).status, VIRTIO_BLK_S_OK);
  });
});

describe('virtio-blk: malformed requests', () => {
  test('sectors beyond the capacity are IOERR, with overflow-safe arithmetic', () => {
    const h = harness({ size: MiB });
    const capacity = h.device.capacity; // 2048
    const cases: [number | bigint, number][] = [
      [capacity, 512],
      [capacity - 1, 1024],
      [capacity + 1, 0],
      [2n ** 64n - 1n, 512],
      [2n ** 64n - 1n, 0],
      [2n ** 63n, 512],
      [2n ** 53n, 512],
      [2n ** 55n - 1n, 512], // rounds up to 2^55 as a number, still far outside
      [BigInt(Number.MAX_SAFE_INTEGER), 512],
      [2n ** 32n + 1n, 512],
    ];
    for (const [sector, length] of cases) {
      const r = h.read(sector, length === 0 ? [] : [length]);
      assert.equal(r.status, VIRTIO_BLK_S_IOERR, `read sector ${sector} +${length}`);
      assert.equal(r.len, 1, 'only the status byte');
      const w = h.write(sector, length === 0 ? [] : [pattern(length, 1)]);
      assert.equal(w.status, VIRTIO_BLK_S_IOERR, `write sector ${sector} +${length}`);
    }
    // The very end is fine, and so is an empty request at the end.
    assert.equal(h.read(capacity - 2, [1024]).status, VIRTIO_BLK_S_OK);
    assert.equal(h.read(capacity, []).status, VIRTIO_BLK_S_OK);
    assert.equal(statSync(h.path).size, MiB, 'nothing written past the end');
  });

  test('a data length that is not a multiple of 512 is IOERR', () => {
    const h = harness();
    for (const length of [1, 511, 513, 1000]) {
      assert.equal(h.read(0, [length]).status, VIRTIO_BLK_S_IOERR, `read ${length}`);
      assert.equal(h.write(0, [pattern(length, 1)]).status, VIRTIO_BLK_S_IOERR, `write ${length}`);
    }
    assert.equal(allocatedBlocks(h.path), 0, 'nothing was written');
  });

  test('no status byte: completed with used length 0, nothing written', () => {
    const h = harness();
    const chain = h.driver.submit({ readable: [header(VIRTIO_BLK_T_OUT, 0), pattern(512, 1)] });
    const used = h.run();
    assert.deepEqual(used, [{ id: chain.head, len: 0 }]);
    assert.equal(allocatedBlocks(h.path), 0);
    // Zero-length writable buffers do not hold a status either.
    const empty = h.driver.submit({ readable: [header(VIRTIO_BLK_T_IN, 0)], writable: [0, 0] });
    assert.deepEqual(h.run(), [{ id: empty.head, len: 0 }]);
  });

  test('a header that is short or device-writable is IOERR', () => {
    const h = harness();
    // The header in a writable buffer: no readable bytes at all.
    const writableHeader = h.one({ writable: [header(VIRTIO_BLK_T_IN, 0), 512, 1] });
    assert.equal(writableHeader.status, VIRTIO_BLK_S_IOERR);
    assert.equal(writableHeader.len, 1);
    // Half the header readable, half writable.
    const hdr = header(VIRTIO_BLK_T_IN, 0);
    const half = h.one({ readable: [hdr.subarray(0, 8)], writable: [hdr.subarray(8), 512, 1] });
    assert.equal(half.status, VIRTIO_BLK_S_IOERR);
    // Too short, and not there at all.
    assert.equal(
      h.one({ readable: [hdr.subarray(0, 15)], writable: [1] }).status,
      VIRTIO_BLK_S_IOERR,
    );
    assert.equal(h.one({ writable: [1] }).status, VIRTIO_BLK_S_IOERR);
  });

  test('unknown request types are UNSUPP', () => {
    const h = harness();
    for (const type of [2, 3, 5, 7, 10, 14, 15, 16, 0x80000000, 0xffffffff]) {
      const r = h.simple(type);
      assert.equal(r.status, VIRTIO_BLK_S_UNSUPP, `type ${type}`);
      assert.equal(r.len, 1);
    }
  });

  test('discard and write zeroes: segment count, flags, ranges and negotiation', () => {
    const h = harness({ size: MiB });
    const capacity = h.device.capacity;
    const max = DEFAULT_BLK_LIMITS.maxDiscardSegments;
    const many = (n: number) => Array.from({ length: n }, (_, i) => segment(i * 8, 8));
    const cases: [string, number, Uint8Array[], number][] = [
      ['no segment', VIRTIO_BLK_T_DISCARD, [], VIRTIO_BLK_S_IOERR],
      [
        'a partial segment',
        VIRTIO_BLK_T_DISCARD,
        [segment(0, 8).subarray(0, 12)],
        VIRTIO_BLK_S_IOERR,
      ],
      [
        'one and a half',
        VIRTIO_BLK_T_WRITE_ZEROES,
        [segment(0, 8), segment(8, 8).subarray(0, 8)],
        VIRTIO_BLK_S_IOERR,
      ],
      ['max segments', VIRTIO_BLK_T_DISCARD, many(max), VIRTIO_BLK_S_OK],
      ['too many segments', VIRTIO_BLK_T_DISCARD, many(max + 1), VIRTIO_BLK_S_IOERR],
      ['too many to zero', VIRTIO_BLK_T_WRITE_ZEROES, many(max + 1), VIRTIO_BLK_S_IOERR],
      ['discard with unmap', VIRTIO_BLK_T_DISCARD, [segment(0, 8, 1)], VIRTIO_BLK_S_UNSUPP],
      ['a reserved flag', VIRTIO_BLK_T_DISCARD, [segment(0, 8, 2)], VIRTIO_BLK_S_UNSUPP],
      [
        'a reserved flag (zeroes)',
        VIRTIO_BLK_T_WRITE_ZEROES,
        [segment(0, 8, 0x80000001)],
        VIRTIO_BLK_S_UNSUPP,
      ],
      ['past the end', VIRTIO_BLK_T_DISCARD, [segment(capacity - 4, 8)], VIRTIO_BLK_S_IOERR],
      [
        'start past the end',
        VIRTIO_BLK_T_WRITE_ZEROES,
        [segment(capacity + 1, 0)],
        VIRTIO_BLK_S_IOERR,
      ],
      ['up to the end', VIRTIO_BLK_T_WRITE_ZEROES, [segment(capacity - 8, 8)], VIRTIO_BLK_S_OK],
      [
        'a bad second segment',
        VIRTIO_BLK_T_DISCARD,
        [segment(0, 8), segment(capacity, 1)],
        VIRTIO_BLK_S_IOERR,
      ],
      [
        'too long a segment',
        VIRTIO_BLK_T_WRITE_ZEROES,
        [segment(0, DEFAULT_BLK_LIMITS.maxWriteZeroesSectors + 1)],
        VIRTIO_BLK_S_IOERR,
      ],
    ];
    for (const [what, type, data, status] of cases) {
      assert.equal(h.simple(type, data).status, status, what);
    }
    // A huge u64 sector in a segment.
    const huge = segment(0, 8);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 4n, true);
    assert.equal(h.simple(VIRTIO_BLK_T_DISCARD, [huge]).status, VIRTIO_BLK_S_IOERR);

    // A driver that did not accept DISCARD / WRITE_ZEROES gets UNSUPP.
    const plain = harness({ accept: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_BLK_F_FLUSH) });
    assert.equal(plain.simple(VIRTIO_BLK_T_DISCARD, [segment(0, 8)]).status, VIRTIO_BLK_S_UNSUPP);
    assert.equal(
      plain.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(0, 8)]).status,
      VIRTIO_BLK_S_UNSUPP,
    );
  });

  test('a malformed chain is given back with used length 0', () => {
    const h = harness();
    const good = h.driver.add({ readable: [header(VIRTIO_BLK_T_IN, 0)], writable: [512, 1] });
    const bad = h.driver.add({ readable: [header(VIRTIO_BLK_T_IN, 0)], writable: [512, 1] });
    // Point bad's data buffer outside guest memory.
    const desc = h.driver.readDescriptor(bad.descriptors[1]!);
    h.driver.writeDescriptor(bad.descriptors[1]!, { ...desc, addr: 0x7000_0000 });
    h.driver.publish();
    const used = h.run();
    assert.deepEqual(used, [
      { id: good.head, len: 513 },
      { id: bad.head, len: 0 },
    ]);
    assert.deepEqual(h.resets, []);
    assert.equal(h.interrupts.length, 1);
  });
});

describe('virtio-blk: host I/O errors', () => {
  test('EIO and ENOSPC fail one request with IOERR; the device goes on', () => {
    let fail: string | null = null;
    const failing =
      <A extends unknown[], R>(real: (...args: A) => R, syscall: string) =>
      (...args: A): R => {
        if (fail !== null) throw systemError(fail, syscall);
        return real(...args);
      };
    const errors: unknown[] = [];
    const spy = spyOps({
      read: failing(nodeDiskFileOps.read, 'read'),
      readv: failing(nodeDiskFileOps.readv, 'readv'),
      write: failing(nodeDiskFileOps.write, 'write'),
      writev: failing(nodeDiskFileOps.writev, 'writev'),
      fallocate: failing(nodeDiskFileOps.fallocate, 'fallocate'),
    });
    const h = harness({ ops: spy.ops, onIoError: (error) => errors.push(error) });

    fail = 'ENOSPC';
    const w = h.write(0, [pattern(512, 1), pattern(512, 2)]);
    assert.equal(w.status, VIRTIO_BLK_S_IOERR);
    assert.equal(h.simple(VIRTIO_BLK_T_WRITE_ZEROES, [segment(0, 8)]).status, VIRTIO_BLK_S_IOERR);
    fail = 'EIO';
    const r = h.read(0, [512]);
    assert.equal(r.status, VIRTIO_BLK_S_IOERR);
    assert.equal(r.len, 1, 'a failed read reports only the status byte');
    assert.equal(errors.length, 3);
    assert.match(String(errors[2]), /EIO/);

    fail = null;
    assert.equal(h.write(0, [pattern(1024, 3)]).status, VIRTIO_BLK_S_OK);
    assert.deepEqual(h.read(0, [1024]).data, pattern(1024, 3));
    assert.deepEqual(h.resets, []);
  });
});

describe('virtio-blk: batching and notifications', () => {
  const submitReads = (h: ReturnType<typeof harness>, n: number): SubmittedChain[] => {
    const chains: SubmittedChain[] = [];
    for (let i = 0; i < n; i++) {
      chains.push(
        h.driver.add({ readable: [header(VIRTIO_BLK_T_IN, i * 8)], writable: [4096, 1] }),
      );
    }
    h.driver.publish();
    return chains;
  };

  test('32 requests in one kick: all completed, one interrupt', () => {
    const spy = spyOps();
    const h = harness({ queueSize: 128, ops: spy.ops });
    for (let i = 0; i < 32; i++)
      h.driver.add({
        readable: [header(VIRTIO_BLK_T_OUT, i * 8), pattern(4096, i)],
        writable: [1],
      });
    h.driver.publish();
    const writes = h.run();
    assert.equal(writes.length, 32);
    assert.equal(h.interrupts.length, 1);

    const chains = submitReads(h, 32);
    const used = h.run();
    assert.deepEqual(
      used.map((u) => u.id),
      chains.map((c) => c.head),
    );
    assert.ok(used.every((u) => u.len === 4097));
    assert.equal(spy.count('write'), 32, 'one pwrite per write');
    assert.equal(spy.count('read'), 32, 'one pread per read');
    chains.forEach((c, i) => assert.deepEqual(h.driver.written(c, 4096), pattern(4096, i)));
    assert.equal(h.interrupts.length, 2);
    assert.equal(h.driver.usedFlags, 0, 'notifications are back on after the batch');
    // A kick with nothing new: no interrupt.
    h.device.notify(0);
    assert.equal(h.interrupts.length, 2);
  });

  test('VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the interrupt', () => {
    const h = harness();
    h.driver.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    submitReads(h, 4);
    assert.equal(h.run().length, 4);
    assert.equal(h.interrupts.length, 0);
  });

  test('with EVENT_IDX the interrupt follows used_event', () => {
    const h = harness({ eventIdx: true });
    assert.ok(h.queue.eventIdx);
    // The driver wants an interrupt once used idx passes 9 (the 10th completion).
    h.driver.usedEvent = 9;
    submitReads(h, 4);
    assert.equal(h.run().length, 4);
    assert.equal(h.interrupts.length, 0, 'used idx 0 -> 4 does not pass used_event 9');
    submitReads(h, 8);
    assert.equal(h.run().length, 8);
    assert.equal(h.interrupts.length, 1, 'used idx 4 -> 12 passes used_event 9');
    assert.equal(h.driver.availEvent, 12, 'avail_event asks for the next kick');
    submitReads(h, 2);
    h.run();
    assert.equal(h.interrupts.length, 1, 'used_event 9 already passed');
    h.driver.usedEvent = 14;
    submitReads(h, 1);
    h.run();
    assert.equal(h.interrupts.length, 2, 'used idx 14 -> 15 passes used_event 14');
  });

  test('requests added while the device drains are picked up in the same kick', () => {
    const h = harness();
    let added = false;
    const queue: SplitQueue = h.queue;
    const original = queue.enableNotifications.bind(queue);
    queue.enableNotifications = () => {
      if (!added) {
        added = true;
        submitReads(h, 3);
      }
      return original();
    };
    submitReads(h, 2);
    assert.equal(h.run().length, 5);
    assert.equal(h.interrupts.length, 1);
  });

  test('a broken ring asks for a reset once, and never throws', () => {
    const h = harness({ queueSize: 16 });
    h.driver.availIdx = 100; // 100 entries ahead of a 16-entry ring
    assert.doesNotThrow(() => h.device.notify(0));
    assert.equal(h.resets.length, 1);
    assert.match(h.resets[0]!, /^virtio-blk: avail idx/);
    h.device.notify(0);
    assert.equal(h.resets.length, 1, 'reported once');
    assert.equal(h.interrupts.length, 0);
  });

  test('reset forgets the queues; the device works again after activate; close closes the file', () => {
    const spy = spyOps();
    const h = harness({ ops: spy.ops });
    h.device.reset();
    h.driver.submit({ readable: [header(VIRTIO_BLK_T_IN, 0)], writable: [512, 1] });
    h.device.notify(0);
    assert.equal(h.driver.takeUsed().length, 0, 'no queue after reset');
    assert.equal(spy.count('close'), 0, 'reset keeps the file open');

    h.device.activate({
      memory: h.driver.memory,
      queues: [h.queue],
      features: h.device.features,
      interrupt: (i) => h.interrupts.push(i),
      needsReset: (r) => h.resets.push(r),
    });
    h.device.notify(1); // not a queue of this device
    assert.equal(h.driver.takeUsed().length, 0);
    assert.equal(h.run().length, 1);

    h.device.close();
    assert.equal(spy.count('close'), 1);
    h.device.close();
    assert.equal(spy.count('close'), 1, 'closing twice closes once');
    h.device.notify(0);
  });
});
