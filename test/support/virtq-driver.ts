// A driver-side simulator of a split virtqueue, for tests of the queue library and of devices.
// It plays the guest: it owns a block of "guest RAM" (a plain Uint8Array behind a GuestMemory),
// lays out the descriptor table, available ring and used ring in it, adds chains of readable and
// writable buffers (directly or through an indirect table), publishes them, and reads back what
// the device put in the used ring. It can also write any raw value into any ring field, to play
// a hostile or buggy driver.
//
// Typical device test:
//
//   const driver = VirtqDriver.create({ size: 16 });          // RAM, rings, nothing queued
//   const queue = driver.createQueue();                        // the device's SplitQueue
//   const req = driver.submit({ readable: [header], writable: [512, 1] }); // add + publish
//   device.handle(queue);                                      // pops, writes, addUsed(...)
//   const [used] = driver.takeUsed();                          // { id, len } entries
//   assert.equal(used.id, req.head);
//   const reply = driver.written(req);                         // the writable bytes, in order
//
// Several queues of one device share memory: make one GuestRam and one VirtqDriver per queue
// (new VirtqDriver(ram, { size })). Helpers throw on their own misuse (out of RAM, no free
// descriptors): they are test code, unlike the library.
import { GuestMemory, type MemoryRegion } from '../../core/devices/guest-memory.ts';
import {
  DESC_SIZE,
  SplitQueue,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  vringNeedEvent,
  type QueueLayout,
  type SplitQueueOptions,
} from '../../core/devices/queue/index.ts';

export { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY };

/** A guest buffer: guest physical address and length. */
export interface GuestBuffer {
  addr: number;
  len: number;
}

/** One raw descriptor. `addr` may be a bigint to write values past 2^53. */
export interface RawDescriptor {
  addr: number | bigint;
  len: number;
  flags: number;
  next: number;
}

const align = (value: number, to: number): number => Math.ceil(value / to) * to;

/**
 * Guest RAM for tests: one region of `size` bytes at guest address `base`, with a first-fit
 * allocator for rings, buffers and indirect tables. The default base is not 0 so that code which
 * confuses guest addresses with buffer offsets fails.
 */
export class GuestRam {
  readonly base: number;
  readonly bytes: Uint8Array;
  readonly region: MemoryRegion;
  readonly memory: GuestMemory;
  private readonly dv: DataView;
  /** Free extents [start, end) in guest addresses, sorted and coalesced. */
  private free: { start: number; end: number }[];

  constructor(options: { size?: number; base?: number; bytes?: Uint8Array } = {}) {
    this.base = options.base ?? 0x10000;
    this.bytes = options.bytes ?? new Uint8Array(options.size ?? 4 << 20);
    this.region = { guestAddress: this.base, bytes: this.bytes };
    this.memory = new GuestMemory([this.region]);
    this.dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.free = [{ start: this.base, end: this.base + this.bytes.length }];
  }

  /** One past the last guest address. */
  get end(): number {
    return this.base + this.bytes.length;
  }

  /** Offset into `bytes` of guest address `addr` (throws outside RAM: a test bug). */
  offset(addr: number, len = 0): number {
    const off = addr - this.base;
    if (!(off >= 0 && off + len <= this.bytes.length)) {
      throw new RangeError(`GuestRam: 0x${addr.toString(16)} (+${len}) outside test RAM`);
    }
    return off;
  }

  /** Allocate `len` bytes aligned to `alignment` (first fit); throws when RAM is exhausted. */
  alloc(len: number, alignment = 16): number {
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i]!;
      const start = align(block.start, alignment);
      if (start + len > block.end) continue;
      const pieces = [];
      if (start > block.start) pieces.push({ start: block.start, end: start });
      if (start + len < block.end) pieces.push({ start: start + len, end: block.end });
      this.free.splice(i, 1, ...pieces);
      return start;
    }
    throw new RangeError(`GuestRam: cannot allocate ${len} bytes (aligned ${alignment})`);
  }

  /** Give back an allocation (a zero-length one is a no-op). */
  release(addr: number, len: number): void {
    if (len === 0) return;
    this.offset(addr, len);
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < addr) i++;
    this.free.splice(i, 0, { start: addr, end: addr + len });
    const merged: { start: number; end: number }[] = [];
    for (const block of this.free) {
      const last = merged[merged.length - 1];
      if (last && last.end >= block.start) last.end = Math.max(last.end, block.end);
      else merged.push({ ...block });
    }
    this.free = merged;
  }

  /** Allocate and fill with `data`. */
  place(data: Uint8Array, alignment = 8): number {
    const addr = this.alloc(data.length, alignment);
    this.write(addr, data);
    return addr;
  }

  write(addr: number, data: Uint8Array | readonly number[]): void {
    this.bytes.set(data, this.offset(addr, data.length));
  }

  /** A copy of guest bytes [addr, addr + len). */
  read(addr: number, len: number): Uint8Array {
    const off = this.offset(addr, len);
    return this.bytes.slice(off, off + len);
  }

  fill(addr: number, len: number, value: number): void {
    const off = this.offset(addr, len);
    this.bytes.fill(value, off, off + len);
  }

  getU16(addr: number): number {
    return this.dv.getUint16(this.offset(addr, 2), true);
  }
  setU16(addr: number, value: number): void {
    this.dv.setUint16(this.offset(addr, 2), value & 0xffff, true);
  }
  getU32(addr: number): number {
    return this.dv.getUint32(this.offset(addr, 4), true);
  }
  setU32(addr: number, value: number): void {
    this.dv.setUint32(this.offset(addr, 4), value >>> 0, true);
  }
  getU64(addr: number): bigint {
    return this.dv.getBigUint64(this.offset(addr, 8), true);
  }
  setU64(addr: number, value: number | bigint): void {
    this.dv.setBigUint64(this.offset(addr, 8), BigInt.asUintN(64, BigInt(value)), true);
  }
}

/**
 * A buffer of a chain: for readable buffers, the bytes the device should read (or a length,
 * filled with a recognisable pattern); for writable buffers, a length (zero-filled) or initial
 * contents (to see what the device overwrote).
 */
export type BufferSpec = Uint8Array | number;

export interface ChainSpec {
  readable?: BufferSpec[];
  writable?: BufferSpec[];
  /** Put all the buffers in an indirect table, referenced by a single head descriptor. */
  indirect?: boolean;
}

/** A chain the driver has added: where everything went. */
export interface SubmittedChain {
  /** The head descriptor index (what the used ring returns as `id`). */
  head: number;
  readable: GuestBuffer[];
  writable: GuestBuffer[];
  /** Main-table descriptor indices of the chain, head first (one for an indirect chain). */
  descriptors: number[];
  /** The indirect table, if any. */
  indirectTable: GuestBuffer | null;
}

export interface UsedElement {
  id: number;
  len: number;
}

export interface VirtqDriverOptions {
  /** Queue size (power of 2); default 16. */
  size?: number;
  /** Ring addresses; each one not given is allocated from the RAM, properly aligned. */
  layout?: Partial<Omit<QueueLayout, 'size'>>;
  /** Drive the queue with VIRTIO_F_EVENT_IDX (used_event / avail_event). */
  eventIdx?: boolean;
}

/** The driver side of one split virtqueue in a GuestRam. */
export class VirtqDriver {
  readonly ram: GuestRam;
  readonly layout: QueueLayout;
  readonly size: number;
  readonly eventIdx: boolean;
  /** Guest addresses of every ring field, for tests that write garbage into them. */
  readonly fields: {
    availFlags: number;
    availIdx: number;
    availRing: (slot: number) => number;
    usedEvent: number;
    usedFlags: number;
    usedIdx: number;
    usedRing: (slot: number) => number;
    availEvent: number;
  };

  /** avail idx including added-but-unpublished chains; the published value is in the ring. */
  private shadowAvail = 0;
  private lastSeenUsed = 0;
  private freeDescs: number[] = [];
  private readonly outstanding = new Map<number, SubmittedChain>();

  constructor(ram: GuestRam, options: VirtqDriverOptions = {}) {
    const size = options.size ?? 16;
    if (!(size >= 1 && size <= 32768 && (size & (size - 1)) === 0)) {
      throw new RangeError(`VirtqDriver: queue size ${size} is not a power of 2 up to 32768`);
    }
    this.ram = ram;
    this.size = size;
    this.eventIdx = options.eventIdx === true;
    const given = options.layout ?? {};
    this.layout = {
      size,
      descTable: given.descTable ?? ram.alloc(DESC_SIZE * size, 16),
      availRing: given.availRing ?? ram.alloc(6 + 2 * size, 2),
      usedRing: given.usedRing ?? ram.alloc(6 + 8 * size, 4),
    };
    const { availRing, usedRing } = this.layout;
    this.fields = {
      availFlags: availRing,
      availIdx: availRing + 2,
      availRing: (slot) => availRing + 4 + 2 * (slot % size),
      usedEvent: availRing + 4 + 2 * size,
      usedFlags: usedRing,
      usedIdx: usedRing + 2,
      usedRing: (slot) => usedRing + 4 + 8 * (slot % size),
      availEvent: usedRing + 4 + 8 * size,
    };
    this.reset();
  }

  /** A driver with its own RAM (default 4 MiB at 0x10000). */
  static create(
    options: VirtqDriverOptions & { ramSize?: number; ramBase?: number } = {},
  ): VirtqDriver {
    return new VirtqDriver(new GuestRam({ size: options.ramSize, base: options.ramBase }), options);
  }

  get memory(): GuestMemory {
    return this.ram.memory;
  }

  /** The device's side: a SplitQueue over this layout (eventIdx as the driver's, by default). */
  createQueue(options: SplitQueueOptions = {}): SplitQueue {
    return new SplitQueue(this.ram.memory, this.layout, { eventIdx: this.eventIdx, ...options });
  }

  /** Zero all three rings and forget every chain (descriptors all free; buffers not released). */
  reset(): void {
    const { descTable, availRing, usedRing } = this.layout;
    const size = this.size;
    for (const [addr, len] of [
      [descTable, DESC_SIZE * size],
      [availRing, 6 + 2 * size],
      [usedRing, 6 + 8 * size],
    ] as const) {
      if (addr >= this.ram.base && addr + len <= this.ram.end) this.ram.fill(addr, len, 0);
    }
    this.shadowAvail = 0;
    this.lastSeenUsed = 0;
    this.outstanding.clear();
    // A stack: the first chains get descriptors 0, 1, 2...; reuse then scrambles the order.
    this.freeDescs = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /**
   * Start both sides' u16 indices at `index` (to test wrapping past 65535): sets avail idx, used
   * idx and the driver's counters. Call queue.nextAvail = queue.nextUsed = index on the device.
   */
  startAt(index: number): void {
    this.shadowAvail = index & 0xffff;
    this.lastSeenUsed = index & 0xffff;
    this.ram.setU16(this.fields.availIdx, index);
    this.ram.setU16(this.fields.usedIdx, index);
  }

  /** Free descriptors left in the main table. */
  get freeDescriptors(): number {
    return this.freeDescs.length;
  }

  /**
   * Add a chain: allocate and fill its buffers, write its descriptors and put its head in the
   * next avail ring slot. Not visible to the device until publish().
   */
  add(spec: ChainSpec): SubmittedChain {
    const readable = (spec.readable ?? []).map((b) => this.placeBuffer(b, false));
    const writable = (spec.writable ?? []).map((b) => this.placeBuffer(b, true));
    const buffers = [
      ...readable.map((b) => ({ ...b, flags: 0 })),
      ...writable.map((b) => ({ ...b, flags: VIRTQ_DESC_F_WRITE })),
    ];
    if (buffers.length === 0) throw new RangeError('VirtqDriver.add: a chain needs a buffer');

    let chain: SubmittedChain;
    if (spec.indirect) {
      const tableLen = DESC_SIZE * buffers.length;
      const tableAddr = this.ram.alloc(tableLen, 16);
      buffers.forEach((b, i) => {
        const last = i === buffers.length - 1;
        this.writeDescriptor(
          i,
          {
            addr: b.addr,
            len: b.len,
            flags: b.flags | (last ? 0 : VIRTQ_DESC_F_NEXT),
            next: last ? 0 : i + 1,
          },
          tableAddr,
        );
      });
      const head = this.takeDescriptors(1)[0]!;
      this.writeDescriptor(head, {
        addr: tableAddr,
        len: tableLen,
        flags: VIRTQ_DESC_F_INDIRECT,
        next: 0,
      });
      chain = {
        head,
        readable,
        writable,
        descriptors: [head],
        indirectTable: { addr: tableAddr, len: tableLen },
      };
    } else {
      const indices = this.takeDescriptors(buffers.length);
      buffers.forEach((b, i) => {
        const last = i === buffers.length - 1;
        this.writeDescriptor(indices[i]!, {
          addr: b.addr,
          len: b.len,
          flags: b.flags | (last ? 0 : VIRTQ_DESC_F_NEXT),
          next: last ? 0 : indices[i + 1]!,
        });
      });
      chain = { head: indices[0]!, readable, writable, descriptors: indices, indirectTable: null };
    }
    this.outstanding.set(chain.head, chain);
    this.pushHead(chain.head);
    return chain;
  }

  /** Put a raw head index in the next avail ring slot (unpublished), valid or not. */
  pushHead(head: number): void {
    this.ram.setU16(this.fields.availRing(this.shadowAvail), head);
    this.shadowAvail = (this.shadowAvail + 1) & 0xffff;
  }

  /**
   * Publish added chains (write avail idx). Returns whether a real driver would now notify the
   * device: with EVENT_IDX by vring_need_event(avail_event, new, old), else unless used.flags
   * has NO_NOTIFY.
   */
  publish(): boolean {
    const oldIdx = this.ram.getU16(this.fields.availIdx);
    const newIdx = this.shadowAvail;
    this.ram.setU16(this.fields.availIdx, newIdx);
    if (this.eventIdx) return vringNeedEvent(this.availEvent, newIdx, oldIdx);
    return (this.ram.getU16(this.fields.usedFlags) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** add() then publish(). */
  submit(spec: ChainSpec): SubmittedChain {
    const chain = this.add(spec);
    this.publish();
    return chain;
  }

  /**
   * Used entries the device added since the last call, in order. The descriptors (and indirect
   * table) of each known head are freed for reuse; the data buffers are kept until release().
   */
  takeUsed(): UsedElement[] {
    const out: UsedElement[] = [];
    const usedIdx = this.usedIdx;
    while (this.lastSeenUsed !== usedIdx) {
      const slot = this.fields.usedRing(this.lastSeenUsed);
      const element = { id: this.ram.getU32(slot), len: this.ram.getU32(slot + 4) };
      out.push(element);
      this.lastSeenUsed = (this.lastSeenUsed + 1) & 0xffff;
      const chain = this.outstanding.get(element.id);
      if (chain) {
        this.outstanding.delete(element.id);
        this.freeDescs.push(...[...chain.descriptors].reverse());
        if (chain.indirectTable)
          this.ram.release(chain.indirectTable.addr, chain.indirectTable.len);
      }
    }
    return out;
  }

  /** Free a chain's data buffers (after takeUsed, once the test has read them). */
  release(chain: SubmittedChain): void {
    for (const b of [...chain.readable, ...chain.writable]) this.ram.release(b.addr, b.len);
  }

  /** The first `len` bytes (default: all) of a chain's writable buffers, concatenated. */
  written(chain: SubmittedChain, len?: number): Uint8Array {
    const total = chain.writable.reduce((n, b) => n + b.len, 0);
    const out = new Uint8Array(Math.min(len ?? total, total));
    let at = 0;
    for (const b of chain.writable) {
      if (at >= out.length) break;
      const take = Math.min(b.len, out.length - at);
      out.set(this.ram.read(b.addr, take), at);
      at += take;
    }
    return out;
  }

  // --- Raw ring access (for hostile-driver tests) ---

  /** Write descriptor `index` of the main table, or of the table at guest address `table`. */
  writeDescriptor(index: number, desc: RawDescriptor, table = this.layout.descTable): void {
    const at = table + DESC_SIZE * index;
    this.ram.setU64(at, desc.addr);
    this.ram.setU32(at + 8, desc.len);
    this.ram.setU16(at + 12, desc.flags);
    this.ram.setU16(at + 14, desc.next);
  }

  readDescriptor(index: number, table = this.layout.descTable): RawDescriptor {
    const at = table + DESC_SIZE * index;
    return {
      addr: this.ram.getU64(at),
      len: this.ram.getU32(at + 8),
      flags: this.ram.getU16(at + 12),
      next: this.ram.getU16(at + 14),
    };
  }

  /** avail.idx as published. Setting it publishes whatever the ring slots hold. */
  get availIdx(): number {
    return this.ram.getU16(this.fields.availIdx);
  }
  set availIdx(value: number) {
    this.ram.setU16(this.fields.availIdx, value);
    this.shadowAvail = value & 0xffff;
  }

  get availFlags(): number {
    return this.ram.getU16(this.fields.availFlags);
  }
  set availFlags(value: number) {
    this.ram.setU16(this.fields.availFlags, value);
  }

  /** avail ring used_event (EVENT_IDX): "interrupt me when used idx passes this". */
  get usedEvent(): number {
    return this.ram.getU16(this.fields.usedEvent);
  }
  set usedEvent(value: number) {
    this.ram.setU16(this.fields.usedEvent, value);
  }

  /** Write a raw value into avail ring slot `slot` (mod size). */
  setAvailEntry(slot: number, head: number): void {
    this.ram.setU16(this.fields.availRing(slot), head);
  }

  /** used.idx as the device wrote it. */
  get usedIdx(): number {
    return this.ram.getU16(this.fields.usedIdx);
  }

  /** used.flags as the device wrote it (NO_NOTIFY without EVENT_IDX). */
  get usedFlags(): number {
    return this.ram.getU16(this.fields.usedFlags);
  }

  /** used ring avail_event (EVENT_IDX): "notify me when avail idx passes this". */
  get availEvent(): number {
    return this.ram.getU16(this.fields.availEvent);
  }

  /** The used ring entry in slot `slot` (mod size). */
  usedEntry(slot: number): UsedElement {
    const at = this.fields.usedRing(slot);
    return { id: this.ram.getU32(at), len: this.ram.getU32(at + 4) };
  }

  private takeDescriptors(n: number): number[] {
    if (n > this.freeDescs.length) {
      throw new RangeError(`VirtqDriver: ${n} descriptors wanted, ${this.freeDescs.length} free`);
    }
    return this.freeDescs.splice(this.freeDescs.length - n, n).reverse();
  }

  private placeBuffer(spec: BufferSpec, writable: boolean): GuestBuffer {
    if (typeof spec === 'number') {
      const addr = this.ram.alloc(spec, 8);
      const off = this.ram.offset(addr, spec);
      for (let i = 0; i < spec; i++) this.ram.bytes[off + i] = writable ? 0 : (i * 7 + 1) & 0xff;
      return { addr, len: spec };
    }
    return { addr: this.ram.place(spec, 8), len: spec.length };
  }
}
