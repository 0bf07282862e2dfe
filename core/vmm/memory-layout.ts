// The guest physical address map of a Berth microVM (x86_64), after Firecracker's
// arch/x86_64/layout.rs and crosvm's memory map, plus the PCI pieces our virtio-pci needs.
//
//   0x0000_0000  RAM. Low boot structures the loader writes (all below 1 MiB):
//       0x500      GDT (BOOT_GDT_START), 0x540 IDT (empty)
//       0x7000     zero page (struct boot_params)
//       0x8ff0     initial stack pointer (the stack grows down from here into 0x8000)
//       0x9000     PML4, 0xa000 PDPT, 0xb000..0xefff four page directories (identity map of 4 GiB)
//       0x20000    kernel command line (up to 64 KiB; the kernel's cmdline_size usually caps it)
//   0x0009_fc00  EBDA .. 1 MiB: e820-reserved, as on a PC. Holds our ACPI tables at 0xe0000
//                (RSDP first, so a kernel scanning 0xe0000..0xfffff also finds it).
//   0x0010_0000  RAM (HIMEM). The kernel goes at its pref_address (16 MiB for modern kernels);
//                the initrd at the top of low RAM, below the kernel's initrd_addr_max.
//   0xc000_0000  32-bit MMIO hole to 4 GiB (RAM never lives here):
//       0xc000_0000  PCI 32-bit BAR window (512 MiB), handed out by the VMM
//       0xe000_0000  PCIe ECAM (256 buses x 1 MiB), e820-reserved
//       0xfec0_0000  IOAPIC, 0xfee0_0000 LAPIC
//   0x1_0000_0000  RAM beyond 3 GiB continues here.
//
// I/O ports of the VMM's own platform devices are listed too, so ACPI tables and device models
// agree on one number.

import { hex } from './guest-ram.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const PAGE_SIZE = 4 * KiB;

export const BOOT_GDT_START = 0x500;
/** Room for 8 descriptors; we use 5. */
export const BOOT_GDT_MAX_ENTRIES = 8;
export const BOOT_IDT_START = 0x540;
export const ZERO_PAGE_START = 0x7000;
export const BOOT_STACK_POINTER = 0x8ff0;
export const PML4_START = 0x9000;
export const PDPT_START = 0xa000;
export const PD_START = 0xb000;
/** Page directories for the identity map: one per GiB, 2 MiB pages. */
export const IDENTITY_MAPPED_GIB = 4;
export const CMDLINE_START = 0x20000;
export const CMDLINE_MAX_SIZE = 0x10000;
export const EBDA_START = 0x9fc00;
export const ACPI_START = 0xe0000;
export const ACPI_MAX_SIZE = 0x20000;
export const HIMEM_START = 0x100000;

export const MMIO_HOLE_START = 3 * GiB;
export const MMIO_HOLE_END = 4 * GiB;
export const PCI_MMIO32_START = 0xc000_0000;
export const PCI_MMIO32_SIZE = 512 * MiB;
export const PCI_ECAM_START = 0xe000_0000;
export const PCI_ECAM_SIZE = 256 * MiB;
export const IOAPIC_START = 0xfec0_0000;
export const LAPIC_START = 0xfee0_0000;
export const HIGH_RAM_START = 4 * GiB;

/** PC I/O ports. */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_PORT_COUNT = 8;
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const RTC_PORT = 0x70;
/**
 * The ACPI sleep control register (FADT SLEEP_CONTROL_REG, hardware-reduced ACPI) and the
 * reset register: one byte-wide port the VMM handles. See boot/acpi.ts for the values written.
 */
export const ACPI_SLEEP_CONTROL_PORT = 0x600;
export const ACPI_SLEEP_STATUS_PORT = 0x601;
export const ACPI_RESET_PORT = 0x602;

/** The smallest guest we lay out; the kernel's own needs are checked when it is loaded. */
export const MIN_MEMORY_BYTES = 16 * MiB;
/** A sanity bound: 1 TiB keeps every address an exact JS number and far below 2^53. */
export const MAX_MEMORY_BYTES = 1024 * GiB;

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  address: number;
  size: number;
  type: typeof E820_RAM | typeof E820_RESERVED;
}

export interface RamRegion {
  guestAddress: number;
  size: number;
}

export interface MemoryLayout {
  memoryBytes: number;
  /** The KVM memory slots to create, in address order: low RAM, then RAM above 4 GiB if any. */
  ramRegions: RamRegion[];
  /** End (exclusive) of RAM below the MMIO hole. */
  lowRamEnd: number;
  /** The map given to the kernel in the zero page. */
  e820: E820Entry[];
}

export function memoryLayout(memoryBytes: number): MemoryLayout {
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < MIN_MEMORY_BYTES) {
    throw new Error(
      `memory size: ${memoryBytes} bytes is too small (at least ${MIN_MEMORY_BYTES / MiB} MiB)`,
    );
  }
  if (memoryBytes > MAX_MEMORY_BYTES) {
    throw new Error(`memory size: ${memoryBytes} bytes is more than ${MAX_MEMORY_BYTES / GiB} GiB`);
  }
  if (memoryBytes % PAGE_SIZE !== 0) {
    throw new Error(`memory size: ${memoryBytes} bytes is not a multiple of ${PAGE_SIZE} bytes`);
  }
  const lowRamEnd = Math.min(memoryBytes, MMIO_HOLE_START);
  const highSize = memoryBytes - lowRamEnd;
  const ramRegions: RamRegion[] = [{ guestAddress: 0, size: lowRamEnd }];
  if (highSize > 0) ramRegions.push({ guestAddress: HIGH_RAM_START, size: highSize });

  const e820: E820Entry[] = [
    { address: 0, size: EBDA_START, type: E820_RAM },
    { address: EBDA_START, size: HIMEM_START - EBDA_START, type: E820_RESERVED },
    { address: HIMEM_START, size: lowRamEnd - HIMEM_START, type: E820_RAM },
    { address: PCI_ECAM_START, size: PCI_ECAM_SIZE, type: E820_RESERVED },
  ];
  if (highSize > 0) e820.push({ address: HIGH_RAM_START, size: highSize, type: E820_RAM });
  return { memoryBytes, ramRegions, lowRamEnd, e820 };
}

/** True if [address, address + length) lies in RAM below the MMIO hole. */
export function inLowRam(layout: MemoryLayout, address: number, length: number): boolean {
  return address >= 0 && length >= 0 && address + length <= layout.lowRamEnd;
}

export function describeRange(address: number, length: number): string {
  return `[${hex(address)}, ${hex(address + length)})`;
}
