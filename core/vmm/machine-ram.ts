// Guest RAM of a machine: one memfd (so a vhost-user peer can map the same pages), mapped into
// this process in windows and into KVM memory slots per the memory layout. The device models and
// the boot loader see it as a GuestMemory (bounds-checked; never a view past a window's end).
import { GuestMemory } from '../devices/guest-memory.ts';
import { close, memfdCreate, mmap, type KvmVm, type MappedRegion } from '../native.ts';
import { GiB, type MemoryLayout } from './memory-layout.ts';

/** One mmap is at most 4 GiB on Node 20 (native/kvm/README.md); 2 GiB windows stay clear of it. */
export const RAM_WINDOW_BYTES = 2 * GiB;

export interface RamWindow {
  slot: number;
  guestAddress: number;
  /** Offset of the window in the memfd. */
  fileOffset: number;
  region: MappedRegion;
}

export class MachineRam {
  readonly fd: number;
  readonly windows: readonly RamWindow[];
  readonly memory: GuestMemory;
  private released = false;

  constructor(layout: MemoryLayout, name = 'berth-guest-ram') {
    this.fd = memfdCreate(name, layout.memoryBytes);
    const windows: RamWindow[] = [];
    try {
      let fileOffset = 0;
      for (const ram of layout.ramRegions) {
        for (let done = 0; done < ram.size; done += RAM_WINDOW_BYTES) {
          const size = Math.min(RAM_WINDOW_BYTES, ram.size - done);
          const region = mmap(this.fd, fileOffset, size, true);
          windows.push({
            slot: windows.length,
            guestAddress: ram.guestAddress + done,
            fileOffset,
            region,
          });
          fileOffset += size;
        }
      }
    } catch (error) {
      for (const w of windows) w.region.unmap();
      close(this.fd);
      throw error;
    }
    this.windows = windows;
    this.memory = new GuestMemory(
      windows.map((w) => ({
        guestAddress: w.guestAddress,
        bytes: new Uint8Array(w.region.buffer),
      })),
    );
  }

  /** Puts every window in its own KVM memory slot. */
  mapInto(vm: KvmVm): void {
    for (const w of this.windows) {
      vm.setUserMemoryRegion({ slot: w.slot, guestPhysAddr: w.guestAddress, region: w.region });
    }
  }

  /** Unmaps and closes; call after the VM that pinned the windows is destroyed. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const w of this.windows) w.region.unmap();
    close(this.fd);
  }
}
