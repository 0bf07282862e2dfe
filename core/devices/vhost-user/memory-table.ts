// Guest memory as the front-end (QEMU) shares it: each region is a memfd (or file) descriptor
// that we map into this process. Ring addresses arrive as QEMU's own virtual addresses, so the
// table also translates those to guest physical addresses.
import { close, mmap, type MappedRegion } from '../../native.ts';
import { GuestMemory } from '../guest-memory.ts';
import { ProtocolError, type MemoryRegionMessage } from './protocol.ts';

interface MappedGuestRegion extends MemoryRegionMessage {
  mapping: MappedRegion;
}

export class VhostMemoryTable {
  private regions: MappedGuestRegion[] = [];
  memory = new GuestMemory([]);

  /** Maps every region of a SET_MEM_TABLE message; the descriptors are closed either way. */
  replace(regions: MemoryRegionMessage[], fds: number[]): void {
    const mapped: MappedGuestRegion[] = [];
    try {
      regions.forEach((region, i) => {
        if (region.size === 0n || region.size > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new ProtocolError(`memory region ${i} has size ${region.size}`);
        }
        const mapping = mmap(fds[i]!, Number(region.mmapOffset), Number(region.size), true);
        mapped.push({ ...region, mapping });
      });
      const memory = new GuestMemory(
        mapped.map((r) => ({
          guestAddress: Number(r.guestAddress),
          bytes: new Uint8Array(r.mapping.buffer),
        })),
      );
      this.clear();
      this.regions = mapped;
      this.memory = memory;
    } catch (error) {
      for (const r of mapped) r.mapping.unmap();
      throw error;
    } finally {
      for (const fd of fds) close(fd);
    }
  }

  /** QEMU's virtual address of a ring -> guest physical address, or null if in no region. */
  translate(userAddress: bigint): number | null {
    for (const r of this.regions) {
      if (userAddress >= r.userAddress && userAddress < r.userAddress + r.size) {
        return Number(r.guestAddress + (userAddress - r.userAddress));
      }
    }
    return null;
  }

  get regionCount(): number {
    return this.regions.length;
  }

  /** Unmaps everything: any view into the old memory becomes detached (zero length), never dangling. */
  clear(): void {
    for (const r of this.regions) r.mapping.unmap();
    this.regions = [];
    this.memory = new GuestMemory([]);
  }
}
