// The device side of a split virtqueue (virtio 1.2, 2.7): take chains from the available ring,
// give them back through the used ring, and decide when notifications are needed (2.7.7,
// 2.7.10, VIRTIO_F_EVENT_IDX). Guest memory is touched only through GuestMemory, and the ring
// views are cached at construction.
//
// The driver is untrusted. Nothing here throws for anything the driver wrote:
//  - a malformed chain is returned as { error, head }: the device completes it anyway
//    (addUsed(head, 0), perhaps after writing an error status), and the queue carries on;
//  - a ring that cannot be used at all (layout outside guest memory or misaligned, a queue size
//    that is not a power of two up to 32768, avail idx more than `size` ahead of what we
//    consumed) sets `broken`: from then on pop() returns null, addUsed() does nothing, and the
//    device should set DEVICE_NEEDS_RESET.
import type { GuestMemory } from '../guest-memory.ts';
import { fullBarrier } from './memory-barrier.ts';
import {
  walkChain,
  type ChainLimits,
  type DescriptorChain,
  DESC_SIZE,
} from './descriptor-chain.ts';

/** Guest addresses of the three parts of a split virtqueue, and its size. */
export interface QueueLayout {
  /** Queue size: a power of 2, at most 32768. */
  size: number;
  /** Descriptor table: 16 * size bytes, 16-byte aligned. */
  descTable: number;
  /** Available ring (driver area): 6 + 2 * size bytes, 2-byte aligned. */
  availRing: number;
  /** Used ring (device area): 6 + 8 * size bytes, 4-byte aligned. */
  usedRing: number;
}

export interface SplitQueueOptions {
  /** VIRTIO_F_EVENT_IDX was negotiated: use used_event / avail_event instead of the flags. */
  eventIdx?: boolean;
  /**
   * Largest total length of one chain, readable and writable together; a longer chain is an
   * error. Default 256 MiB; clamped to 2^32 - 1 (the spec's limit on any chain).
   */
  maxChainBytes?: number;
  /** VIRTIO_F_INDIRECT_DESC was negotiated (default true): else INDIRECT is an error. */
  indirectDesc?: boolean;
  /**
   * Most entries an indirect table may have (default: the queue size, as 2.7.5.3.1 bounds a
   * chain by the queue size). A device that advertises a segment limit (virtio-blk seg_max)
   * keeps it within this.
   */
  maxIndirectEntries?: number;
}

/**
 * null: nothing new. { chain }: a well-formed chain. { error, head }: a malformed chain that the
 * device must still complete with addUsed(head, 0). `head` is the raw avail ring entry, which may
 * be >= size when that is what was wrong; addUsed accepts it all the same, since the driver gets
 * back what it put in.
 */
export type PopResult = { chain: DescriptorChain } | { error: string; head: number } | null;

/** avail.flags: the driver does not want used buffer notifications (without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** used.flags: the device does not want available buffer notifications (without EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
export const MAX_QUEUE_SIZE = 32768;
export const DEFAULT_MAX_CHAIN_BYTES = 256 * 1024 * 1024;

/** The spec's vring_need_event: has the index moved from `oldIdx` to `newIdx` past `eventIdx`? */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

const NO_RING = new DataView(new ArrayBuffer(0));

export class SplitQueue {
  /** The queue size (0 if the layout was rejected). */
  readonly size: number;
  readonly eventIdx: boolean;

  private readonly memory: GuestMemory;
  private readonly mask: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  /** Offset in the avail ring of used_event, in the used ring of avail_event. */
  private readonly usedEventOffset: number;
  private readonly availEventOffset: number;
  private readonly limits: ChainLimits;

  private brokenReason: string | null = null;
  private availNext = 0;
  private usedNext = 0;
  private notificationsOn = true;
  /** used idx at the last needsInterrupt() decision; invalid after nextUsed is set from outside. */
  private signalledUsed = 0;
  private signalledValid = true;
  /** Per head index: how many popped chains with that head await addUsed. */
  private readonly inflight: Uint32Array;
  /** The same, for heads >= size (popped as errors); rare, so a map. */
  private readonly inflightBadHeads = new Map<number, number>();

  constructor(memory: GuestMemory, layout: QueueLayout, options: SplitQueueOptions = {}) {
    this.memory = memory;
    this.eventIdx = options.eventIdx === true;
    const { size, descTable, availRing, usedRing } = layout;
    const sizeOk =
      Number.isInteger(size) && size >= 1 && size <= MAX_QUEUE_SIZE && (size & (size - 1)) === 0;
    this.size = sizeOk ? size : 0;
    this.mask = sizeOk ? size - 1 : 0;
    this.usedEventOffset = 4 + 2 * this.size;
    this.availEventOffset = 4 + 8 * this.size;
    this.inflight = new Uint32Array(this.size);
    const maxChainBytes = options.maxChainBytes ?? DEFAULT_MAX_CHAIN_BYTES;
    const maxIndirect = options.maxIndirectEntries ?? this.size;
    this.limits = {
      maxChainBytes: maxChainBytes >= 0 ? Math.min(Math.floor(maxChainBytes), 0xffffffff) : 0,
      indirect: options.indirectDesc !== false,
      maxIndirectEntries: maxIndirect >= 0 ? Math.min(Math.floor(maxIndirect), 0xffff) : 0,
    };

    let desc: DataView | null = null;
    let avail: DataView | null = null;
    let used: DataView | null = null;
    if (!sizeOk) {
      this.brokenReason = `queue size ${String(size)} is not a power of 2 in 1..${MAX_QUEUE_SIZE}`;
    } else if (misaligned(descTable, 16)) {
      this.brokenReason = `descriptor table address ${misaligned(descTable, 16)}`;
    } else if (misaligned(availRing, 2)) {
      this.brokenReason = `available ring address ${misaligned(availRing, 2)}`;
    } else if (misaligned(usedRing, 4)) {
      this.brokenReason = `used ring address ${misaligned(usedRing, 4)}`;
    } else {
      desc = memory.view(descTable, DESC_SIZE * size);
      avail = memory.view(availRing, 6 + 2 * size);
      used = memory.view(usedRing, 6 + 8 * size);
      if (desc === null) {
        this.brokenReason = `descriptor table ${addr(descTable)} (+${DESC_SIZE * size}) outside guest memory`;
      } else if (avail === null) {
        this.brokenReason = `available ring ${addr(availRing)} (+${6 + 2 * size}) outside guest memory`;
      } else if (used === null) {
        this.brokenReason = `used ring ${addr(usedRing)} (+${6 + 8 * size}) outside guest memory`;
      }
    }
    this.desc = desc ?? NO_RING;
    this.avail = avail ?? NO_RING;
    this.used = used ?? NO_RING;
  }

  /** Why the ring is unusable, or null. Once set it stays set; the device needs a reset. */
  get broken(): string | null {
    return this.brokenReason;
  }

  /** The next avail ring index the device will consume (u16, wrapping). */
  get nextAvail(): number {
    return this.availNext;
  }
  set nextAvail(value: number) {
    this.availNext = value & 0xffff;
  }

  /** The next used ring index the device will fill (u16, wrapping); addUsed publishes it. */
  get nextUsed(): number {
    return this.usedNext;
  }
  set nextUsed(value: number) {
    this.usedNext = value & 0xffff;
    // We no longer know which used entries the driver has been told about: the next
    // needsInterrupt() says yes (a spurious interrupt is allowed, a missed one is not).
    this.signalledValid = false;
  }

  /** The ring as both sides see it, for diagnosing a stalled queue. */
  debugState(): Record<string, number | boolean | string | null> {
    const ok = this.brokenReason === null && this.size > 0;
    return {
      size: this.size,
      broken: this.brokenReason,
      nextAvail: this.availNext,
      availIdx: ok ? this.avail.getUint16(2, true) : null,
      availFlags: ok ? this.avail.getUint16(0, true) : null,
      usedEvent: ok && this.eventIdx ? this.avail.getUint16(this.usedEventOffset, true) : null,
      nextUsed: this.usedNext,
      usedIdx: ok ? this.used.getUint16(2, true) : null,
      availEvent: ok && this.eventIdx ? this.used.getUint16(this.availEventOffset, true) : null,
      notificationsOn: this.notificationsOn,
      inflight: this.inflightCount,
      lastSignalled: this.signalledUsed,
    };
  }

  /** How many heads were popped and not yet given back with addUsed. */
  get inflightCount(): number {
    let n = 0;
    for (let i = 0; i < this.inflight.length; i++) n += this.inflight[i]!;
    for (const count of this.inflightBadHeads.values()) n += count;
    return n;
  }

  /**
   * The next available chain: null when there is none (or the ring is broken), { chain } for a
   * well-formed one, { error, head } for a malformed one (still to be completed with addUsed).
   */
  pop(): PopResult {
    if (this.brokenReason !== null) return null;
    const availIdx = this.avail.getUint16(2, true);
    const pending = (availIdx - this.availNext) & 0xffff;
    if (pending === 0) return null;
    if (pending > this.size) {
      this.brokenReason =
        `avail idx ${availIdx} is ${pending} entries ahead of the device's ${this.availNext}` +
        ` (queue size ${this.size})`;
      return null;
    }
    const head = this.avail.getUint16(4 + 2 * (this.availNext & this.mask), true);
    this.availNext = (this.availNext + 1) & 0xffff;
    if (this.eventIdx && this.notificationsOn) {
      this.used.setUint16(this.availEventOffset, this.availNext, true);
      // The next pop reads avail idx: the driver must see avail_event first (memory-barrier.ts).
      fullBarrier();
    }
    if (head < this.size) this.inflight[head]!++;
    else this.inflightBadHeads.set(head, (this.inflightBadHeads.get(head) ?? 0) + 1);

    const chain = walkChain(this.memory, this.desc, this.size, head, this.limits);
    return typeof chain === 'string' ? { error: chain, head } : { chain };
  }

  /**
   * Give a popped chain back to the driver with `writtenBytes` written into its writable buffers
   * (clamped to 0..2^32-1), and publish the new used idx. Returns false, changing nothing, when
   * `head` is not currently popped (never popped, or already given back) or the ring is broken.
   */
  addUsed(head: number, writtenBytes: number): boolean {
    if (this.brokenReason !== null) return false;
    if (head < this.size && (head & 0xffff) === head) {
      if (this.inflight[head] === 0) return false;
      this.inflight[head]!--;
    } else {
      const count = this.inflightBadHeads.get(head);
      if (count === undefined) return false;
      if (count === 1) this.inflightBadHeads.delete(head);
      else this.inflightBadHeads.set(head, count - 1);
    }
    const len =
      writtenBytes >= 0xffffffff ? 0xffffffff : writtenBytes > 0 ? Math.floor(writtenBytes) : 0;
    const off = 4 + 8 * (this.usedNext & this.mask);
    this.used.setUint32(off, head, true);
    this.used.setUint32(off + 4, len, true);
    this.usedNext = (this.usedNext + 1) & 0xffff;
    this.used.setUint16(2, this.usedNext, true);
    return true;
  }

  /**
   * After a batch of addUsed: should the device send a used buffer notification? Without
   * EVENT_IDX: yes unless avail.flags has NO_INTERRUPT. With EVENT_IDX: yes if used idx moved
   * past used_event since the last decision (vring_need_event). No if nothing was added since.
   */
  needsInterrupt(): boolean {
    if (this.brokenReason !== null) return false;
    const newIdx = this.usedNext;
    const oldIdx = this.signalledUsed;
    const valid = this.signalledValid;
    this.signalledUsed = newIdx;
    this.signalledValid = true;
    if (!valid) return true;
    if (newIdx === oldIdx) return false;
    // used idx (written by addUsed) must be visible before we read the driver's suppression.
    fullBarrier();
    if (this.eventIdx) {
      return vringNeedEvent(this.avail.getUint16(this.usedEventOffset, true), newIdx, oldIdx);
    }
    return (this.avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Ask the driver not to notify us of new buffers (while we are busy popping): used.flags
   * NO_NOTIFY, or with EVENT_IDX leave avail_event where it is. Advisory only.
   */
  disableNotifications(): void {
    if (this.brokenReason !== null) return;
    this.notificationsOn = false;
    if (!this.eventIdx) this.used.setUint16(0, VIRTQ_USED_F_NO_NOTIFY, true);
  }

  /**
   * Ask to be notified again (used.flags 0, or avail_event = nextAvail), then look at avail idx
   * once more: true if buffers arrived in the meantime, and the device should keep popping
   * rather than wait for a notification that may never come.
   */
  enableNotifications(): boolean {
    if (this.brokenReason !== null) return false;
    this.notificationsOn = true;
    if (this.eventIdx) this.used.setUint16(this.availEventOffset, this.availNext, true);
    else this.used.setUint16(0, 0, true);
    // The driver must see the re-enabled notification before we look at avail idx again.
    fullBarrier();
    return this.avail.getUint16(2, true) !== this.availNext;
  }
}

/** What is wrong with a ring address ('' if nothing): not a guest address, or misaligned. */
function misaligned(address: number, alignment: number): string {
  if (!(Number.isSafeInteger(address) && address >= 0)) {
    return `${String(address)} is not a guest address`;
  }
  return address % alignment === 0 ? '' : `${addr(address)} is not ${alignment}-byte aligned`;
}

function addr(address: number): string {
  return `0x${address.toString(16)}`;
}
