// A bzImage as the Linux x86 boot protocol (Documentation/arch/x86/boot.rst) describes it: a
// real-mode setup part of (setup_sects + 1) sectors whose setup header starts at 0x1f1, then the
// protected-mode kernel. We boot through the 64-bit entry (load address + 0x200), so the real-mode
// part is never run; we only read its header, copy it into the zero page, and load the rest.

import { type GuestRam, hex, writeRam } from '../guest-ram.ts';
import { type MemoryLayout, HIMEM_START, describeRange } from '../memory-layout.ts';

export const SETUP_HEADER_OFFSET = 0x1f1;
/** The header runs to 0x202 + the byte at 0x201 (the jump's displacement); at most this far. */
export const SETUP_HEADER_MAX_END = 0x290;
export const BOOT_FLAG = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HDRS_MAGIC = 0x53726448;
/** 2.12 added xloadflags, which is where XLF_KERNEL_64 (the 64-bit entry) is announced. */
export const MIN_BOOT_PROTOCOL = 0x020c;
export const LOADFLAG_LOADED_HIGH = 0x01;
export const LOADFLAG_CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;
/** Offset of the 64-bit entry point from the start of the protected-mode kernel. */
export const ENTRY_64_OFFSET = 0x200;

/** Field offsets in the image (and, identically, in boot_params). */
export const HDR = {
  setupSects: 0x1f1,
  syssize: 0x1f4,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;

export interface SetupHeader {
  setupSects: number;
  /** Size of the protected-mode code in bytes (syssize is in 16-byte paragraphs). */
  syssizeBytes: number;
  version: number;
  loadflags: number;
  xloadflags: number;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatable: boolean;
  /** Longest command line the kernel takes, not counting the terminating NUL. */
  cmdlineSize: number;
  prefAddress: number;
  /** Bytes the kernel needs from its load address for decompressing and starting itself. */
  initSize: number;
}

export interface BzImage {
  header: SetupHeader;
  /** The setup header bytes, [0x1f1, end of header), for the zero page. */
  headerBytes: Uint8Array;
  /** The protected-mode kernel: everything after the setup sectors. */
  kernel: Uint8Array;
}

function fail(field: string, problem: string): never {
  throw new Error(`bzImage: ${field}: ${problem}`);
}

function versionString(version: number): string {
  return `${version >> 8}.${(version & 0xff).toString().padStart(2, '0')}`;
}

export function parseBzImage(image: Uint8Array): BzImage {
  if (image.length < SETUP_HEADER_MAX_END) {
    fail('size', `${image.length} bytes is too short for a setup header`);
  }
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const magic = dv.getUint32(HDR.header, true);
  if (magic !== HDRS_MAGIC) {
    fail('header', `magic is ${hex(magic)}, not "HdrS" (is this a bzImage?)`);
  }
  const bootFlag = dv.getUint16(HDR.bootFlag, true);
  if (bootFlag !== BOOT_FLAG) fail('boot_flag', `is ${hex(bootFlag)}, not 0xaa55`);
  const version = dv.getUint16(HDR.version, true);
  if (version < MIN_BOOT_PROTOCOL) {
    fail(
      'version',
      `boot protocol ${versionString(version)} is too old: the 64-bit entry needs 2.12 or later`,
    );
  }
  const xloadflags = dv.getUint16(HDR.xloadflags, true);
  if ((xloadflags & XLF_KERNEL_64) === 0) {
    fail('xloadflags', 'XLF_KERNEL_64 is not set: this kernel has no 64-bit entry point');
  }
  const loadflags = dv.getUint8(HDR.loadflags);
  if ((loadflags & LOADFLAG_LOADED_HIGH) === 0) {
    fail('loadflags', 'LOADED_HIGH is not set: a zImage (loaded at 0x10000) is not supported');
  }
  const headerEnd = Math.min(HDR.header + dv.getUint8(HDR.jump + 1), SETUP_HEADER_MAX_END);
  if (headerEnd < HDR.initSize + 4) {
    fail('header length', `the header ends at ${hex(headerEnd)}, before init_size`);
  }
  const setupSects = dv.getUint8(HDR.setupSects) || 4; // 0 means 4, by the protocol
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset >= image.length) {
    fail('setup_sects', `${setupSects} setup sectors reach past the end of the image`);
  }
  const syssizeBytes = dv.getUint32(HDR.syssize, true) * 16;
  if (syssizeBytes === 0) fail('syssize', 'is 0');
  if (kernelOffset + syssizeBytes > image.length) {
    fail(
      'syssize',
      `the kernel is ${syssizeBytes} bytes but the image holds only ${image.length - kernelOffset} after the setup sectors (truncated?)`,
    );
  }
  const kernelAlignment = dv.getUint32(HDR.kernelAlignment, true);
  if (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0) {
    fail('kernel_alignment', `${hex(kernelAlignment)} is not a power of two`);
  }
  const prefAddress = Number(dv.getBigUint64(HDR.prefAddress, true));
  if (!Number.isSafeInteger(prefAddress) || prefAddress < HIMEM_START) {
    fail('pref_address', `${hex(prefAddress)} is below 1 MiB`);
  }
  const initSize = dv.getUint32(HDR.initSize, true);
  if (initSize < syssizeBytes) {
    fail('init_size', `${initSize} bytes is smaller than the kernel itself (${syssizeBytes})`);
  }
  const relocatable = dv.getUint8(HDR.relocatableKernel) !== 0;
  if (relocatable && prefAddress % kernelAlignment !== 0) {
    fail('pref_address', `${hex(prefAddress)} is not aligned to kernel_alignment`);
  }
  const cmdlineSize = dv.getUint32(HDR.cmdlineSize, true);
  if (cmdlineSize === 0) fail('cmdline_size', 'is 0');

  return {
    header: {
      setupSects,
      syssizeBytes,
      version,
      loadflags,
      xloadflags,
      initrdAddrMax: dv.getUint32(HDR.initrdAddrMax, true),
      kernelAlignment,
      relocatable,
      cmdlineSize,
      prefAddress,
      initSize,
    },
    headerBytes: image.slice(SETUP_HEADER_OFFSET, headerEnd),
    kernel: image.subarray(kernelOffset),
  };
}

export interface LoadedKernel {
  /** Where the protected-mode kernel starts in guest memory. */
  loadAddress: number;
  /** First address after [loadAddress, loadAddress + init_size): free for the initrd. */
  endOfKernel: number;
  /** RIP for the 64-bit entry. */
  entry64: number;
}

/**
 * Copy the protected-mode kernel to its preferred address. Both relocatable and fixed kernels
 * accept pref_address, and the kernel needs init_size bytes from there, all in low RAM.
 */
export function loadBzImage(ram: GuestRam, layout: MemoryLayout, image: BzImage): LoadedKernel {
  const { prefAddress, initSize } = image.header;
  const need = Math.max(initSize, image.kernel.length);
  if (prefAddress + need > layout.lowRamEnd) {
    throw new Error(
      `kernel too big for the RAM: it needs ${describeRange(prefAddress, need)} (pref_address + init_size) but RAM below the PCI hole ends at ${hex(layout.lowRamEnd)}`,
    );
  }
  writeRam(ram, prefAddress, image.kernel, 'kernel');
  return {
    loadAddress: prefAddress,
    endOfKernel: prefAddress + need,
    entry64: prefAddress + ENTRY_64_OFFSET,
  };
}
