// The zero page (struct boot_params, arch/x86/include/uapi/asm/bootparam.h): what a loader tells
// the kernel at the 64-bit entry, found through RSI. We start from the setup header copied out of
// the image (the protocol asks for that) and fill in the loader's fields, the e820 map, the
// command line, the initrd and the RSDP address.

import { type GuestRam, hex, ramSlice, writeRam } from '../guest-ram.ts';
import {
  type E820Entry,
  type MemoryLayout,
  CMDLINE_MAX_SIZE,
  CMDLINE_START,
  PAGE_SIZE,
  ZERO_PAGE_START,
  describeRange,
} from '../memory-layout.ts';
import { type BzImage, HDR, LOADFLAG_CAN_USE_HEAP, SETUP_HEADER_OFFSET } from './bzimage.ts';

export const BOOT_PARAMS_SIZE = 4096;
export const BP_ACPI_RSDP_ADDR = 0x070;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_E820_TABLE = 0x2d0;
export const E820_ENTRY_SIZE = 20;
export const E820_MAX_ENTRIES = 128;
/** "Undefined" boot loader id: we have no registered id. */
export const TYPE_OF_LOADER_UNDEFINED = 0xff;

export interface InitrdPlacement {
  address: number;
  size: number;
}

/**
 * Put the initrd as high as the kernel allows (below initrd_addr_max and the end of low RAM),
 * page-aligned, and above the memory the kernel needs for itself.
 */
export function placeInitrd(
  layout: MemoryLayout,
  image: BzImage,
  endOfKernel: number,
  size: number,
): InitrdPlacement {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new Error(`initrd: size ${size} is not a positive byte count`);
  }
  const end = Math.min(image.header.initrdAddrMax + 1, layout.lowRamEnd);
  const address = Math.floor((end - size) / PAGE_SIZE) * PAGE_SIZE;
  if (address < endOfKernel) {
    throw new Error(
      `initrd too big: ${size} bytes do not fit between the kernel's end (${hex(endOfKernel)}) and ${hex(end)} (end of low RAM or initrd_addr_max); give the VM more memory`,
    );
  }
  return { address, size };
}

export function writeInitrd(ram: GuestRam, placement: InitrdPlacement, initrd: Uint8Array): void {
  writeRam(ram, placement.address, initrd, 'initrd');
}

/** Write the NUL-terminated command line at CMDLINE_START; returns its address. */
export function writeCmdline(ram: GuestRam, image: BzImage, cmdline: string): number {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.includes(0)) throw new Error('command line: contains a NUL byte');
  const limit = Math.min(image.header.cmdlineSize, CMDLINE_MAX_SIZE - 1);
  if (bytes.length > limit) {
    throw new Error(
      `command line too long: ${bytes.length} bytes, the kernel takes at most ${limit} (cmdline_size)`,
    );
  }
  const target = ramSlice(ram, CMDLINE_START, bytes.length + 1, 'command line');
  target.set(bytes);
  target[bytes.length] = 0;
  return CMDLINE_START;
}

export interface ZeroPageOptions {
  image: BzImage;
  e820: readonly E820Entry[];
  cmdlineAddress: number;
  initrd?: InitrdPlacement;
  /** Physical address of the ACPI RSDP (boot protocol 2.14+ reads it from here). */
  acpiRsdp?: number;
}

/** Build boot_params as bytes (tests read them; writeZeroPage puts them in guest RAM). */
export function buildZeroPage(options: ZeroPageOptions): Uint8Array {
  const page = new Uint8Array(BOOT_PARAMS_SIZE);
  const dv = new DataView(page.buffer);
  page.set(options.image.headerBytes, SETUP_HEADER_OFFSET);

  dv.setUint8(HDR.typeOfLoader, TYPE_OF_LOADER_UNDEFINED);
  // LOADED_HIGH stays as the image has it; CAN_USE_HEAP tells the (unused) real-mode setup that
  // heap_end_ptr is valid, as other 64-bit loaders do.
  dv.setUint8(HDR.loadflags, dv.getUint8(HDR.loadflags) | LOADFLAG_CAN_USE_HEAP);
  dv.setUint16(HDR.heapEndPtr, 0xfe00, true);
  dv.setUint32(HDR.cmdLinePtr, options.cmdlineAddress, true);
  if (options.initrd) {
    dv.setUint32(HDR.ramdiskImage, options.initrd.address, true);
    dv.setUint32(HDR.ramdiskSize, options.initrd.size, true);
  } else {
    dv.setUint32(HDR.ramdiskImage, 0, true);
    dv.setUint32(HDR.ramdiskSize, 0, true);
  }
  if (options.acpiRsdp !== undefined) {
    dv.setBigUint64(BP_ACPI_RSDP_ADDR, BigInt(options.acpiRsdp), true);
  }

  if (options.e820.length > E820_MAX_ENTRIES) {
    throw new Error(`e820: ${options.e820.length} entries, at most ${E820_MAX_ENTRIES}`);
  }
  dv.setUint8(BP_E820_ENTRIES, options.e820.length);
  options.e820.forEach((entry, i) => {
    if (entry.size <= 0) throw new Error(`e820: entry ${describeRange(entry.address, 0)} is empty`);
    const at = BP_E820_TABLE + i * E820_ENTRY_SIZE;
    dv.setBigUint64(at, BigInt(entry.address), true);
    dv.setBigUint64(at + 8, BigInt(entry.size), true);
    dv.setUint32(at + 16, entry.type, true);
  });
  return page;
}

export function writeZeroPage(ram: GuestRam, options: ZeroPageOptions): number {
  writeRam(ram, ZERO_PAGE_START, buildZeroPage(options), 'zero page');
  return ZERO_PAGE_START;
}
