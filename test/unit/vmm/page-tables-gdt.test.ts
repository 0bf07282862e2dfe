import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BOOT_CS_SELECTOR,
  BOOT_DS_SELECTOR,
  BOOT_GDT,
  bootRegs,
  bootSregs,
  gdtEntry,
  segmentFromDescriptor,
  writeBootGdt,
} from '../../../core/vmm/boot/gdt.ts';
import { writeIdentityPageTables } from '../../../core/vmm/boot/page-tables.ts';
import { plainGuestRam } from '../../../core/vmm/guest-ram.ts';
import {
  BOOT_GDT_START,
  BOOT_STACK_POINTER,
  GiB,
  MiB,
  PD_START,
  PDPT_START,
  PML4_START,
  ZERO_PAGE_START,
} from '../../../core/vmm/memory-layout.ts';

function ram() {
  const { ram, buffers } = plainGuestRam([{ guestAddress: 0, size: 1 * MiB }]);
  const dv = new DataView(buffers[0]!.buffer);
  return { ram, dv };
}

/** Walk the tables as the MMU would for a 2 MiB mapping. */
function translate(dv: DataView, cr3: number, va: bigint): bigint | null {
  const pml4e = dv.getBigUint64(cr3 + Number((va >> 39n) & 511n) * 8, true);
  if (!(pml4e & 1n)) return null;
  const pdpte = dv.getBigUint64(Number(pml4e & ~0xfffn) + Number((va >> 30n) & 511n) * 8, true);
  if (!(pdpte & 1n)) return null;
  const pde = dv.getBigUint64(Number(pdpte & ~0xfffn) + Number((va >> 21n) & 511n) * 8, true);
  if (!(pde & 1n) || !(pde & 0x80n)) return null;
  return (pde & ~0x1fffffn) + (va & 0x1fffffn);
}

describe('identity page tables', () => {
  test('map the first 4 GiB 1:1 with 2 MiB pages, and nothing beyond', () => {
    const { ram: r, dv } = ram();
    const cr3 = writeIdentityPageTables(r);
    assert.equal(cr3, PML4_START);
    assert.equal(dv.getBigUint64(PML4_START, true), BigInt(PDPT_START) | 3n);
    assert.equal(dv.getBigUint64(PDPT_START + 3 * 8, true), BigInt(PD_START + 3 * 4096) | 3n);
    assert.equal(dv.getBigUint64(PD_START, true), 0x83n);
    for (const va of [0n, 0x7000n, 0x1000200n, 0xbfffffffn, 0xfee00000n, BigInt(4 * GiB - 1)]) {
      assert.equal(translate(dv, cr3, va), va, `0x${va.toString(16)}`);
    }
    assert.equal(translate(dv, cr3, BigInt(4 * GiB)), null);
  });
});

describe('GDT and boot registers', () => {
  test('descriptors decode to flat 64-bit code and data segments', () => {
    assert.equal(gdtEntry(0xa, 0x9b, 0, 0xfffff), 0x00af9b000000ffffn);
    assert.equal(gdtEntry(0xc, 0x93, 0, 0xfffff), 0x00cf93000000ffffn);
    const code = segmentFromDescriptor(BOOT_GDT[2]!, 0x10);
    assert.deepEqual(code, {
      base: 0n,
      limit: 0xffffffff,
      selector: 0x10,
      type: 0xb,
      present: 1,
      dpl: 0,
      db: 0,
      s: 1,
      l: 1,
      g: 1,
      avl: 0,
      unusable: 0,
    });
    const data = segmentFromDescriptor(BOOT_GDT[3]!, 0x18);
    assert.equal(data.type, 3);
    assert.equal(data.db, 1);
    assert.equal(data.l, 0);
    assert.equal(segmentFromDescriptor(0n, 0).unusable, 1);
  });

  test('the GDT is in RAM where sregs.gdt says', () => {
    const { ram: r, dv } = ram();
    writeBootGdt(r);
    const sregs = bootSregs({ cr3: PML4_START });
    assert.equal(sregs.gdt!.base, BigInt(BOOT_GDT_START));
    assert.equal(sregs.gdt!.limit, BOOT_GDT.length * 8 - 1);
    BOOT_GDT.forEach((d, i) => assert.equal(dv.getBigUint64(BOOT_GDT_START + i * 8, true), d));
  });

  test('sregs enter long mode with paging at the boot protocol selectors', () => {
    const sregs = bootSregs({ cr3: PML4_START });
    assert.equal(sregs.cs!.selector, BOOT_CS_SELECTOR);
    for (const s of [sregs.ds, sregs.es, sregs.ss]) assert.equal(s!.selector, BOOT_DS_SELECTOR);
    assert.equal(sregs.cr0! & 0x80000001n, 0x80000001n, 'PE and PG');
    assert.equal(sregs.cr0! & 0x60000000n, 0n, 'caches enabled');
    assert.equal(sregs.cr3, BigInt(PML4_START));
    assert.equal(sregs.cr4! & 0x20n, 0x20n, 'PAE');
    assert.equal(sregs.efer, 0x500n, 'LME and LMA');
    assert.equal(sregs.tr!.type, 0xb);
  });

  test('regs point RIP at the 64-bit entry and RSI at the zero page', () => {
    const regs = bootRegs({ entry64: 0x1000200 });
    assert.equal(regs.rip, 0x1000200n);
    assert.equal(regs.rsi, BigInt(ZERO_PAGE_START));
    assert.equal(regs.rsp, BigInt(BOOT_STACK_POINTER));
    assert.equal(regs.rflags, 2n, 'interrupts off');
  });
});
