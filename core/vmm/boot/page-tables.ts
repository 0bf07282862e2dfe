// Identity-mapped page tables for the 64-bit entry. The boot protocol wants the kernel, the zero
// page and the command line mapped 1:1; we map the whole first 4 GiB with 2 MiB pages (one PML4
// entry, four PDPT entries, four page directories) so the initrd anywhere in low RAM is covered.
// The kernel builds its own tables soon after; these only have to last until then.

import { type GuestRam, ramSlice } from '../guest-ram.ts';
import {
  GiB,
  IDENTITY_MAPPED_GIB,
  MiB,
  PAGE_SIZE,
  PD_START,
  PDPT_START,
  PML4_START,
} from '../memory-layout.ts';

export const PTE_PRESENT = 0x1n;
export const PTE_WRITABLE = 0x2n;
/** In a page-directory entry: this maps a 2 MiB page rather than pointing at a page table. */
export const PTE_PAGE_SIZE = 0x80n;

/** Writes the tables; returns CR3 (the PML4's address). */
export function writeIdentityPageTables(ram: GuestRam): number {
  const pml4 = view(ram, PML4_START, 'PML4');
  const pdpt = view(ram, PDPT_START, 'PDPT');
  pml4.setBigUint64(0, BigInt(PDPT_START) | PTE_PRESENT | PTE_WRITABLE, true);
  for (let i = 1; i < 512; i++) pml4.setBigUint64(i * 8, 0n, true);
  for (let g = 0; g < 512; g++) {
    const entry =
      g < IDENTITY_MAPPED_GIB ? BigInt(PD_START + g * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE : 0n;
    pdpt.setBigUint64(g * 8, entry, true);
  }
  for (let g = 0; g < IDENTITY_MAPPED_GIB; g++) {
    const pd = view(ram, PD_START + g * PAGE_SIZE, `page directory ${g}`);
    for (let i = 0; i < 512; i++) {
      const address = BigInt(g) * BigInt(GiB) + BigInt(i) * BigInt(2 * MiB);
      pd.setBigUint64(i * 8, address | PTE_PRESENT | PTE_WRITABLE | PTE_PAGE_SIZE, true);
    }
  }
  return PML4_START;
}

function view(ram: GuestRam, address: number, what: string): DataView {
  const bytes = ramSlice(ram, address, PAGE_SIZE, what);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
