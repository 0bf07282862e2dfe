// The GDT and the register state for the Linux 64-bit entry (boot protocol, "64-bit Boot
// Protocol"): long mode with paging on and an identity map; a GDT with flat __BOOT_CS (0x10,
// execute/read) and __BOOT_DS (0x18, read/write); CS = __BOOT_CS; DS, ES, SS = __BOOT_DS;
// interrupts off; RSI = the zero page. The values are the shapes core/native.ts takes, so a
// machine calls vcpu.setSregs(bootSregs(...)) and vcpu.setRegs(bootRegs(...)) as they are.

import type { KvmMsr, KvmRegs, KvmSegment, KvmSregsUpdate } from '../../native.ts';
import { type GuestRam, writeRam } from '../guest-ram.ts';
import {
  BOOT_GDT_MAX_ENTRIES,
  BOOT_GDT_START,
  BOOT_IDT_START,
  BOOT_STACK_POINTER,
  ZERO_PAGE_START,
} from '../memory-layout.ts';

export const X86_CR0_PE = 0x1n;
export const X86_CR0_ET = 0x10n;
export const X86_CR0_PG = 0x8000_0000n;
export const X86_CR4_PAE = 0x20n;
export const EFER_LME = 0x100n;
export const EFER_LMA = 0x400n;
/** Bit 1 of RFLAGS is reserved and always 1; IF stays 0. */
export const RFLAGS_RESERVED = 0x2n;

export const BOOT_CS_SELECTOR = 0x10;
export const BOOT_DS_SELECTOR = 0x18;
export const BOOT_TSS_SELECTOR = 0x20;

/**
 * A segment descriptor from its parts: flags is the nibble G, D/B, L, AVL (bits 55..52);
 * access is the byte P, DPL, S, type (bits 47..40).
 */
export function gdtEntry(flags: number, access: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit & 0xfffff);
  return (
    ((b & 0xff00_0000n) << 32n) |
    (BigInt(flags & 0xf) << 52n) |
    ((l & 0xf_0000n) << 32n) |
    (BigInt(access & 0xff) << 40n) |
    ((b & 0x00ff_ffffn) << 16n) |
    (l & 0xffffn)
  );
}

/** Null, null, code (0x10), data (0x18), TSS (0x20). */
export const BOOT_GDT: readonly bigint[] = [
  0n,
  0n,
  gdtEntry(0xa, 0x9b, 0, 0xfffff), // G, L; present, S, execute/read, accessed
  gdtEntry(0xc, 0x93, 0, 0xfffff), // G, D/B; present, S, read/write, accessed
  gdtEntry(0x8, 0x8b, 0, 0xfffff), // G; present, busy 64-bit TSS
];

/** The kvm_segment KVM wants for a descriptor loaded with `selector`. */
export function segmentFromDescriptor(descriptor: bigint, selector: number): KvmSegment {
  const field = (shift: bigint, mask: bigint) => Number((descriptor >> shift) & mask);
  const base = ((descriptor >> 16n) & 0xff_ffffn) | (((descriptor >> 56n) & 0xffn) << 24n);
  const rawLimit = field(0n, 0xffffn) | (field(48n, 0xfn) << 16);
  const g = field(55n, 1n);
  const present = field(47n, 1n);
  return {
    base,
    // With G set the limit counts 4 KiB pages; KVM takes it in bytes.
    limit: g ? rawLimit * 0x1000 + 0xfff : rawLimit,
    selector,
    type: field(40n, 0xfn),
    present,
    dpl: field(45n, 3n),
    db: field(54n, 1n),
    s: field(44n, 1n),
    l: field(53n, 1n),
    g,
    avl: field(52n, 1n),
    unusable: present ? 0 : 1,
  };
}

/** Write the GDT and an empty IDT (interrupts stay off until the kernel loads its own). */
export function writeBootGdt(ram: GuestRam): void {
  if (BOOT_GDT.length > BOOT_GDT_MAX_ENTRIES) throw new Error('GDT: too many entries');
  const gdt = new Uint8Array(BOOT_GDT.length * 8);
  const dv = new DataView(gdt.buffer);
  BOOT_GDT.forEach((entry, i) => dv.setBigUint64(i * 8, entry, true));
  writeRam(ram, BOOT_GDT_START, gdt, 'GDT');
  writeRam(ram, BOOT_IDT_START, new Uint8Array(8), 'IDT');
}

export interface BootSregsOptions {
  /** Address of the PML4 (from writeIdentityPageTables). */
  cr3: number;
}

export function bootSregs(options: BootSregsOptions): KvmSregsUpdate {
  const code = segmentFromDescriptor(BOOT_GDT[BOOT_CS_SELECTOR / 8]!, BOOT_CS_SELECTOR);
  const data = segmentFromDescriptor(BOOT_GDT[BOOT_DS_SELECTOR / 8]!, BOOT_DS_SELECTOR);
  const tss = segmentFromDescriptor(BOOT_GDT[BOOT_TSS_SELECTOR / 8]!, BOOT_TSS_SELECTOR);
  return {
    cs: code,
    ds: data,
    es: { ...data },
    fs: { ...data },
    gs: { ...data },
    ss: { ...data },
    tr: tss,
    gdt: { base: BigInt(BOOT_GDT_START), limit: BOOT_GDT.length * 8 - 1 },
    idt: { base: BigInt(BOOT_IDT_START), limit: 7 },
    // Caches on (CD and NW clear, unlike KVM's reset value), protected mode, paging.
    cr0: X86_CR0_PE | X86_CR0_ET | X86_CR0_PG,
    cr3: BigInt(options.cr3),
    cr4: X86_CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
}

export interface BootRegsOptions {
  /** The 64-bit entry: load address + 0x200. */
  entry64: number;
  zeroPage?: number;
}

export function bootRegs(options: BootRegsOptions): KvmRegs {
  return {
    rax: 0n,
    rbx: 0n,
    rcx: 0n,
    rdx: 0n,
    rsi: BigInt(options.zeroPage ?? ZERO_PAGE_START),
    rdi: 0n,
    rsp: BigInt(BOOT_STACK_POINTER),
    rbp: BigInt(BOOT_STACK_POINTER),
    r8: 0n,
    r9: 0n,
    r10: 0n,
    r11: 0n,
    r12: 0n,
    r13: 0n,
    r14: 0n,
    r15: 0n,
    rip: BigInt(options.entry64),
    rflags: RFLAGS_RESERVED,
  };
}

export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MISC_ENABLE_FAST_STRING = 0x1n;

/** MSRs worth setting before the first run: fast string operations on, as firmware would. */
export function bootMsrs(): KvmMsr[] {
  return [{ index: MSR_IA32_MISC_ENABLE, value: MISC_ENABLE_FAST_STRING }];
}
