// Guest RAM of a machine, mapped into this process in windows and into KVM memory slots per the
// memory layout. By default it is one memfd, so a vhost-user peer can map the same pages. With
// hugePages it is private anonymous memory advised for transparent huge pages (as QEMU's and
// Firecracker's is without vhost-user): KVM then maps the guest 2 MiB at a time, and a booting
// guest takes one nested page fault per 2 MiB it first touches instead of one per 4 KiB. In the
// nested harness that cut our boot by about 3 s, but 1 of 6 boots there triple-faulted early and
// one L1 died after a run, which no memfd boot did; until that is understood it is opt-in. The device models and
// the boot loader see it as a GuestMemory (bounds-checked; never a view past a window's end).
import { GuestMemory } from '../devices/guest-memory.ts';
import {
  close,
  memfdCreate,
  mmap,
  mmapAnonymous,
  type KvmVm,
  type MappedRegion,
} from '../native.ts';
import { GiB, type MemoryLayout } from './memory-layout.ts';

/** One mmap is at most 4 GiB on Node 20 (native/kvm/README.md); 2 GiB windows stay clear of it. */
export const RAM_WINDOW_BYTES = 2 * GiB;

export interface RamWindow {
  slot: number;
  guestAddress: number;
  /** Offset of the window in the memfd (shared RAM). */
  fileOffset: number;
  region: MappedRegion;
}

export interface MachineRamOptions {
  /** Private anonymous memory in transparent huge pages instead of a shareable memfd. */
  hugePages?: boolean;
  name?: string;
}

export class MachineRam {
  /** The memfd; null for private huge-page RAM. */
  readonly fd: number | null;
  readonly windows: readonly RamWindow[];
  readonly memory: GuestMemory;
  private released = false;

  constructor(layout: MemoryLayout, options: MachineRamOptions = {}) {
    const name = options.name ?? 'berth-guest-ram';
    const fd = options.hugePages ? null : memfdCreate(name, layout.memoryBytes);
    this.fd = fd;
    const windows: RamWindow[] = [];
    try {
      let fileOffset = 0;
      for (const ram of layout.ramRegions) {
        for (let done = 0; done < ram.size; done += RAM_WINDOW_BYTES) {
          const size = Math.min(RAM_WINDOW_BYTES, ram.size - done);
          const region = fd === null ? mmapAnonymous(size, name) : mmap(fd, fileOffset, size, true);
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
      if (fd !== null) close(fd);
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
    if (this.fd !== null) close(this.fd);
  }
}
