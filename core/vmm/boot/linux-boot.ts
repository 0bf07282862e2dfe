// Everything a machine does to guest RAM before the first vCPU runs a Linux kernel, in one call:
// kernel, initrd, command line, ACPI tables, zero page, page tables, GDT; and the register values
// for the boot vCPU. The other vCPUs wait for INIT/SIPI from the kernel and need none of it.

import type { KvmMsr, KvmRegs, KvmSregsUpdate } from '../../native.ts';
import type { GuestRam } from '../guest-ram.ts';
import type { MemoryLayout } from '../memory-layout.ts';
import { type AcpiOptions, type AcpiTables, writeAcpiTables } from './acpi.ts';
import { type BzImage, type LoadedKernel, loadBzImage, parseBzImage } from './bzimage.ts';
import { bootMsrs, bootRegs, bootSregs, writeBootGdt } from './gdt.ts';
import { writeIdentityPageTables } from './page-tables.ts';
import {
  type InitrdPlacement,
  placeInitrd,
  writeCmdline,
  writeInitrd,
  writeZeroPage,
} from './zero-page.ts';

export interface LinuxBootOptions extends Omit<AcpiOptions, 'vcpus'> {
  ram: GuestRam;
  layout: MemoryLayout;
  /** The bzImage file's bytes. */
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  vcpus: number;
}

export interface LinuxBoot {
  image: BzImage;
  kernel: LoadedKernel;
  initrd: InitrdPlacement | null;
  acpi: AcpiTables;
  zeroPage: number;
  /** For the boot vCPU: vcpu.setSregs(sregs); vcpu.setRegs(regs); vcpu.setMsrs(msrs). */
  regs: KvmRegs;
  sregs: KvmSregsUpdate;
  msrs: KvmMsr[];
}

export function setupLinuxBoot(options: LinuxBootOptions): LinuxBoot {
  const { ram, layout } = options;
  // Each step checks its input and throws naming it; RAM may then be partly written, which is
  // fine: a machine that fails to set up is thrown away with its memory.
  const image = parseBzImage(options.kernel);
  if (!Number.isInteger(options.vcpus) || options.vcpus < 1) {
    throw new Error(`vCPU count: ${options.vcpus} (a VM needs at least 1 vCPU)`);
  }
  const kernel = loadBzImage(ram, layout, image);
  const initrd = options.initrd
    ? placeInitrd(layout, image, kernel.endOfKernel, options.initrd.length)
    : null;
  if (initrd && options.initrd) writeInitrd(ram, initrd, options.initrd);
  const cmdlineAddress = writeCmdline(ram, image, options.cmdline);
  const acpi = writeAcpiTables(ram, { ...options, vcpus: options.vcpus });
  const zeroPage = writeZeroPage(ram, {
    image,
    e820: layout.e820,
    cmdlineAddress,
    ...(initrd ? { initrd } : {}),
    acpiRsdp: acpi.rsdp,
  });
  const cr3 = writeIdentityPageTables(ram);
  writeBootGdt(ram);
  return {
    image,
    kernel,
    initrd,
    acpi,
    zeroPage,
    regs: bootRegs({ entry64: kernel.entry64, zeroPage }),
    sregs: bootSregs({ cr3 }),
    msrs: bootMsrs(),
  };
}
