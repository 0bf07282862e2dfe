// Guest memory as a device model sees it: a set of regions (guest physical address ranges mapped
// into this process) behind a bounds-checked accessor. The guest is untrusted, so every address
// and length comes from it unchecked: lookups never throw and never return a view that reaches
// outside a region; they return null and the caller reports an error to the guest instead.

export interface MemoryRegion {
  /** Guest physical address of the first byte. */
  guestAddress: number;
  /** The region's bytes (for vhost-user: an mmap of the fd QEMU sent; in tests: a plain buffer). */
  bytes: Uint8Array;
}

/** Guest addresses are u64; we keep them as numbers and refuse anything past 2^53 as invalid. */
const MAX_ADDRESS = Number.MAX_SAFE_INTEGER;

export class GuestMemory {
  private readonly regions: MemoryRegion[];

  constructor(regions: MemoryRegion[]) {
    this.regions = [...regions].sort((a, b) => a.guestAddress - b.guestAddress);
    for (let i = 1; i < this.regions.length; i++) {
      const prev = this.regions[i - 1]!;
      if (prev.guestAddress + prev.bytes.length > this.regions[i]!.guestAddress) {
        throw new Error(`guest memory: regions at 0x${prev.guestAddress.toString(16)} overlap`);
      }
    }
  }

  get regionList(): readonly MemoryRegion[] {
    return this.regions;
  }

  /**
   * A view of [address, address + length) if it lies inside one region, else null.
   * `address` may be a bigint (a raw u64 from a descriptor); length must be a u32-sized number.
   */
  slice(address: number | bigint, length: number): Uint8Array | null {
    if (typeof address === 'bigint') {
      if (address < 0n || address > BigInt(MAX_ADDRESS)) return null;
      address = Number(address);
    }
    if (!Number.isInteger(address) || !Number.isInteger(length) || address < 0 || length < 0)
      return null;
    if (address + length > MAX_ADDRESS) return null;
    for (const region of this.regions) {
      const offset = address - region.guestAddress;
      if (offset < 0) break;
      if (offset + length <= region.bytes.length) {
        return region.bytes.subarray(offset, offset + length);
      }
    }
    return null;
  }

  /** A DataView for fixed-layout structures (rings, headers); null if out of bounds. */
  view(address: number | bigint, length: number): DataView | null {
    const bytes = this.slice(address, length);
    return bytes ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null;
  }
}
