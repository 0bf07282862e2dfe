// The descriptor chain walk of a split virtqueue (virtio 1.2, 2.7.5): from a head index, follow
// NEXT through the descriptor table, and at most once into an indirect table (2.7.5.3), turning
// each descriptor into a bounds-checked view of guest memory. The driver is untrusted: every
// field is validated, every walk is bounded by the size of the table it walks, and a malformed
// chain yields an error string (never an exception) that the queue hands to the device.
import type { GuestMemory } from '../guest-memory.ts';

/** The buffer continues via the `next` field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of descriptors (needs VIRTIO_F_INDIRECT_DESC). */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** sizeof(struct virtq_desc): le64 addr, le32 len, le16 flags, le16 next. */
export const DESC_SIZE = 16;

/**
 * A descriptor address is a u64 read as two u32 halves. A high half above this puts the address
 * at or past 2^53, where a JS number stops being exact: such an address is invalid (no guest
 * has memory there), so it is rejected without ever building a BigInt.
 */
const MAX_ADDR_HIGH = 0x1fffff;
const TWO_POW_32 = 0x1_0000_0000;

export interface DescriptorChain {
  /** Head descriptor index: what goes back in the used ring. */
  head: number;
  /** Device-readable buffers in chain order (views into guest memory). */
  readable: Uint8Array[];
  /** Device-writable buffers in chain order (views into guest memory). */
  writable: Uint8Array[];
  readableBytes: number;
  writableBytes: number;
}

/** What a walk may accept; the queue fixes these at construction. */
export interface ChainLimits {
  /** Largest total of all descriptor lengths in one chain (at most 2^32 - 1, the spec's bound). */
  maxChainBytes: number;
  /** VIRTIO_F_INDIRECT_DESC negotiated: without it an INDIRECT descriptor is an error. */
  indirect: boolean;
  /** Most entries an indirect table may have. */
  maxIndirectEntries: number;
}

function where(index: number, indirect: boolean): string {
  return indirect ? `indirect descriptor ${index}` : `descriptor ${index}`;
}

/**
 * Walk the chain starting at `head` in the descriptor table `table` (a view of exactly
 * `queueSize` descriptors). Returns the chain, or a string saying what is wrong with it.
 *
 * Bounds: the main table is walked for at most `queueSize` descriptors and the indirect table
 * for at most its own entry count, so a NEXT cycle ends as "too long" after one lap at most.
 */
export function walkChain(
  memory: GuestMemory,
  table: DataView,
  queueSize: number,
  head: number,
  limits: ChainLimits,
): DescriptorChain | string {
  if (head >= queueSize) return `head index ${head} out of range (queue size ${queueSize})`;
  const readable: Uint8Array[] = [];
  const writable: Uint8Array[] = [];
  let readableBytes = 0;
  let writableBytes = 0;
  let desc = table;
  let tableLen = queueSize;
  let inIndirect = false;
  let index = head;
  let visited = 0;

  for (;;) {
    if (++visited > tableLen) {
      return inIndirect
        ? `indirect chain longer than its table (${tableLen} entries): a NEXT loop`
        : `chain longer than the queue size (${queueSize}): a NEXT loop`;
    }
    const off = index * DESC_SIZE;
    const addrLow = desc.getUint32(off, true);
    const addrHigh = desc.getUint32(off + 4, true);
    const len = desc.getUint32(off + 8, true);
    const flags = desc.getUint16(off + 12, true);

    if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
      // 2.7.5.3.1: only one table per descriptor, never INDIRECT together with NEXT. The
      // WRITE flag of the descriptor that refers to the table is ignored (device requirement).
      if (inIndirect) return `${where(index, true)}: INDIRECT inside an indirect table`;
      if (!limits.indirect)
        return `${where(index, false)}: INDIRECT without VIRTIO_F_INDIRECT_DESC`;
      if ((flags & VIRTQ_DESC_F_NEXT) !== 0) {
        return `${where(index, false)}: INDIRECT and NEXT both set`;
      }
      if (len === 0 || len % DESC_SIZE !== 0) {
        return `${where(index, false)}: indirect table length ${len} is not a non-zero multiple of ${DESC_SIZE}`;
      }
      const entries = len / DESC_SIZE;
      if (entries > limits.maxIndirectEntries) {
        return `${where(index, false)}: indirect table of ${entries} entries exceeds ${limits.maxIndirectEntries}`;
      }
      const tableView =
        addrHigh > MAX_ADDR_HIGH ? null : memory.view(addrHigh * TWO_POW_32 + addrLow, len);
      if (tableView === null) {
        return `${where(index, false)}: indirect table at 0x${hex(addrHigh, addrLow)} (+${len}) outside guest memory`;
      }
      desc = tableView;
      tableLen = entries;
      inIndirect = true;
      index = 0;
      visited = 0;
      continue;
    }

    if (addrHigh > MAX_ADDR_HIGH) {
      return `${where(index, inIndirect)}: address 0x${hex(addrHigh, addrLow)} beyond 2^53`;
    }
    // Both sums stay far below 2^53, so u32 overflow cannot wrap: it shows up as a total
    // above maxChainBytes (which is at most 2^32 - 1).
    const total = readableBytes + writableBytes + len;
    if (total > limits.maxChainBytes) {
      return `${where(index, inIndirect)}: chain length ${total} exceeds ${limits.maxChainBytes} bytes`;
    }
    const buffer = memory.slice(addrHigh * TWO_POW_32 + addrLow, len);
    if (buffer === null) {
      return `${where(index, inIndirect)}: buffer 0x${hex(addrHigh, addrLow)} (+${len}) outside guest memory`;
    }
    if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
      writable.push(buffer);
      writableBytes += len;
    } else {
      // 2.7.4.2: device-writable descriptors come after all device-readable ones.
      if (writable.length !== 0) {
        return `${where(index, inIndirect)}: device-readable buffer after a device-writable one`;
      }
      readable.push(buffer);
      readableBytes += len;
    }

    if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
    const next = desc.getUint16(off + 14, true);
    if (next >= tableLen) {
      return `${where(index, inIndirect)}: next index ${next} out of range (table of ${tableLen})`;
    }
    index = next;
  }
  return { head, readable, writable, readableBytes, writableBytes };
}

function hex(high: number, low: number): string {
  return high === 0 ? low.toString(16) : high.toString(16) + low.toString(16).padStart(8, '0');
}
