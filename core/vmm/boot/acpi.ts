// ACPI tables for the microVM: RSDP -> XSDT -> FADT (-> DSDT), MADT, and optionally MCFG.
// (The Debian cloud kernel has CONFIG_X86_MPPARSE off, so ACPI is how it learns its CPUs.)
//
// The FADT declares hardware-reduced ACPI (ACPI 6.5 section 4.1): no PM1 blocks, no SCI, no PM
// timer. Power-off then goes like this: the kernel evaluates \_S5 in the DSDT (SLP_TYP = 5) and
// writes (SLP_TYP << 2) | SLP_EN = 0x34 to SLEEP_CONTROL_REG, a byte at I/O port
// ACPI_SLEEP_CONTROL_PORT that the VMM handles by stopping the VM; it first writes WAK_STS (0x80)
// to SLEEP_STATUS_REG (ACPI_SLEEP_STATUS_PORT), which the VMM can ignore. Reboot writes
// ACPI_RESET_VALUE to RESET_REG (ACPI_RESET_PORT); the i8042 reset line also works.
//
// The DSDT holds \_S5 and, unless disabled, a PCI host bridge \_SB.PCI0 (PNP0A03) whose _CRS
// gives bus 0, the 0xcf8 config ports and the 32-bit BAR window, so Linux enumerates bus 0 with
// type 1 config access and assigns BARs in our window.

import { type GuestRam, writeRam } from '../guest-ram.ts';
import {
  ACPI_MAX_SIZE,
  ACPI_RESET_PORT,
  ACPI_SLEEP_CONTROL_PORT,
  ACPI_SLEEP_STATUS_PORT,
  ACPI_START,
  IOAPIC_START,
  LAPIC_START,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_PORT_COUNT,
  PCI_ECAM_SIZE,
  PCI_ECAM_START,
  PCI_MMIO32_SIZE,
  PCI_MMIO32_START,
} from '../memory-layout.ts';

export const ACPI_OEM_ID = 'BERTH ';
export const ACPI_OEM_TABLE_ID = 'BERTHVM ';
export const ACPI_CREATOR_ID = 'BRTH';
export const ACPI_HEADER_SIZE = 36;
export const RSDP_SIZE = 36;
export const FADT_SIZE = 276;

/** \_S5 sleep type, and what the kernel then writes to the sleep control port. */
export const S5_SLP_TYP = 5;
export const SLP_EN = 0x20;
export const ACPI_POWEROFF_VALUE = (S5_SLP_TYP << 2) | SLP_EN;
export const ACPI_RESET_VALUE = 0x01;

export const FADT_FLAG_PWR_BUTTON = 1 << 4;
export const FADT_FLAG_SLP_BUTTON = 1 << 5;
export const FADT_FLAG_RESET_REG_SUP = 1 << 10;
export const FADT_FLAG_HW_REDUCED_ACPI = 1 << 20;
export const IAPC_BOOT_ARCH_LEGACY_DEVICES = 1 << 0;
export const IAPC_BOOT_ARCH_8042 = 1 << 1;
export const IAPC_BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;

export const MADT_LOCAL_APIC = 0;
export const MADT_IO_APIC = 1;
export const MADT_INTERRUPT_OVERRIDE = 2;
export const MADT_PCAT_COMPAT = 1;
/** xAPIC IDs are 8 bits and 0xff is broadcast; more vCPUs would need x2APIC entries. */
export const MAX_VCPUS = 254;
export const IOAPIC_ID = 0;

export interface InterruptOverride {
  /** ISA IRQ. */
  source: number;
  gsi: number;
  /** MPS INTI flags (polarity bits 1:0, trigger bits 3:2); 0 = conforms to the bus. */
  flags: number;
}

export interface AcpiOptions {
  vcpus: number;
  /**
   * ISA IRQ overrides for the MADT. None by default: with hardware-reduced ACPI Linux uses no
   * 8259 and no PIT, and KVM's default GSI routing wires ISA IRQ n to IOAPIC pin n, so the
   * identity mapping the kernel assumes without overrides is the true one.
   */
  interruptOverrides?: readonly InterruptOverride[];
  /** Describe \_SB.PCI0 in the DSDT (default true). */
  pciHostBridge?: boolean;
  /** Add an MCFG table for ECAM at PCI_ECAM_START (default false: type 1 config only). */
  ecam?: boolean;
}

export interface AcpiTables {
  /** Guest address of the first byte of `bytes` (ACPI_START). */
  base: number;
  bytes: Uint8Array;
  rsdp: number;
  /** Guest address of each table by signature. */
  tables: Record<string, number>;
}

// --- helpers -----------------------------------------------------------------------------------

function ascii(text: string, length: number): Uint8Array {
  if (text.length !== length || !/^[\x20-\x7e]*$/.test(text)) {
    throw new Error(`ACPI: "${text}" is not ${length} printable ASCII characters`);
  }
  return new TextEncoder().encode(text);
}

/** The byte that makes `bytes` sum to 0 mod 256 once stored (with the checksum byte at 0). */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A system description table: the 36-byte header, then body; checksum filled in. */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(ACPI_HEADER_SIZE + body.length);
  const dv = new DataView(table.buffer);
  table.set(ascii(signature, 4), 0);
  dv.setUint32(4, table.length, true);
  dv.setUint8(8, revision);
  table.set(ascii(ACPI_OEM_ID, 6), 10);
  table.set(ascii(ACPI_OEM_TABLE_ID, 8), 16);
  dv.setUint32(24, 1, true);
  table.set(ascii(ACPI_CREATOR_ID, 4), 28);
  dv.setUint32(32, 1, true);
  table.set(body, ACPI_HEADER_SIZE);
  table[9] = checksum(table);
  return table;
}

/** A Generic Address Structure for a byte-wide I/O port. */
function ioPortGas(dv: DataView, at: number, port: number): void {
  dv.setUint8(at, 1); // SystemIO
  dv.setUint8(at + 1, 8); // bit width
  dv.setUint8(at + 2, 0); // bit offset
  dv.setUint8(at + 3, 1); // byte access
  dv.setBigUint64(at + 4, BigInt(port), true);
}

// --- AML (just what the DSDT needs) ------------------------------------------------------------

/** PkgLength: the length of itself plus `bodyLength` following bytes, in 1 to 4 bytes. */
export function amlPkgLength(bodyLength: number): Uint8Array {
  for (let extra = 0; extra <= 3; extra++) {
    const total = bodyLength + 1 + extra;
    if (extra === 0 && total <= 0x3f) return Uint8Array.of(total);
    if (extra > 0 && total < 2 ** (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0xf);
      for (let i = 1; i <= extra; i++) out[i] = (total >> (4 + 8 * (i - 1))) & 0xff;
      return out;
    }
  }
  throw new Error(`AML: package of ${bodyLength} bytes is too long`);
}

export function amlInteger(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`AML: bad integer ${value}`);
  if (value === 0) return Uint8Array.of(0x00);
  if (value === 1) return Uint8Array.of(0x01);
  if (value <= 0xff) return Uint8Array.of(0x0a, value);
  if (value <= 0xffff) return Uint8Array.of(0x0b, value & 0xff, value >> 8);
  const size = value <= 0xffff_ffff ? 4 : 8;
  const out = new Uint8Array(1 + size);
  out[0] = size === 4 ? 0x0c : 0x0e;
  const dv = new DataView(out.buffer);
  if (size === 4) dv.setUint32(1, value, true);
  else dv.setBigUint64(1, BigInt(value), true);
  return out;
}

/** A NameSeg ("_S5_", "PCI0"), optionally from the root ("\\_SB_"). */
function amlName(name: string): Uint8Array {
  const root = name.startsWith('\\');
  const seg = ascii(root ? name.slice(1) : name, 4);
  return root ? concat([Uint8Array.of(0x5c), seg]) : seg;
}

function amlNameOp(name: string, value: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0x08), amlName(name), value]);
}

function amlPackage(elements: readonly Uint8Array[]): Uint8Array {
  const body = concat([Uint8Array.of(elements.length), ...elements]);
  return concat([Uint8Array.of(0x12), amlPkgLength(body.length), body]);
}

function amlScope(name: string, terms: readonly Uint8Array[]): Uint8Array {
  const body = concat([amlName(name), ...terms]);
  return concat([Uint8Array.of(0x10), amlPkgLength(body.length), body]);
}

function amlDevice(name: string, terms: readonly Uint8Array[]): Uint8Array {
  const body = concat([amlName(name), ...terms]);
  return concat([Uint8Array.of(0x5b, 0x82), amlPkgLength(body.length), body]);
}

function amlBuffer(bytes: Uint8Array): Uint8Array {
  const body = concat([amlInteger(bytes.length), bytes]);
  return concat([Uint8Array.of(0x11), amlPkgLength(body.length), body]);
}

/** EISAID("PNP0A03") as the DWord constant ASL would emit. */
export function eisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new Error(`AML: bad EISA id ${id}`);
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const product = parseInt(id.slice(3), 16);
  return Uint8Array.of(0x0c, vendor >> 8, vendor & 0xff, product >> 8, product & 0xff);
}

/** Word/DWord address space descriptors (ACPI 6.5 sections 6.4.3.5.2-3), as a producer. */
function addressSpace(kind: 'bus' | 'io' | 'memory32', min: number, max: number): Uint8Array {
  const dword = kind === 'memory32';
  const out = new Uint8Array(dword ? 26 : 16);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, dword ? 0x87 : 0x88);
  dv.setUint16(1, out.length - 3, true);
  dv.setUint8(3, kind === 'memory32' ? 0 : kind === 'io' ? 1 : 2);
  dv.setUint8(4, 0x0c); // MinFixed, MaxFixed, positive decode, producer
  // IO: ISA and non-ISA ranges; memory: read/write, non-cacheable.
  dv.setUint8(5, kind === 'io' ? 0x03 : kind === 'memory32' ? 0x01 : 0);
  const values = [0, min, max, 0, max - min + 1]; // granularity, min, max, translation, length
  values.forEach((v, i) =>
    dword ? dv.setUint32(6 + i * 4, v, true) : dv.setUint16(6 + i * 2, v, true),
  );
  return out;
}

function ioPortDescriptor(port: number, count: number): Uint8Array {
  // IO (Decode16, port, port, 1, count)
  return Uint8Array.of(0x47, 0x01, port & 0xff, port >> 8, port & 0xff, port >> 8, 1, count);
}

function pciHostBridgeAml(): Uint8Array {
  const crs = concat([
    addressSpace('bus', 0, 0),
    ioPortDescriptor(PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_PORT_COUNT),
    addressSpace('io', 0x0000, PCI_CONFIG_ADDRESS_PORT - 1),
    addressSpace('io', PCI_CONFIG_ADDRESS_PORT + PCI_CONFIG_PORT_COUNT, 0xffff),
    addressSpace('memory32', PCI_MMIO32_START, PCI_MMIO32_START + PCI_MMIO32_SIZE - 1),
    Uint8Array.of(0x79, 0x00), // end tag, checksum 0 = "treat as correct"
  ]);
  return amlScope('\\_SB_', [
    amlDevice('PCI0', [
      amlNameOp('_HID', eisaId('PNP0A03')),
      amlNameOp('_UID', amlInteger(0)),
      amlNameOp('_SEG', amlInteger(0)),
      amlNameOp('_BBN', amlInteger(0)),
      amlNameOp('_CRS', amlBuffer(crs)),
    ]),
  ]);
}

/** COM1, as the machine always has it (devices/uart-16550.ts: COM1_BASE, COM1_IRQ). */
export const COM1_PORT = 0x3f8;
export const COM1_ISA_IRQ = 4;

/**
 * \_SB.COM1 (PNP0501) with its ports and IRQ 4. Linux binds its 8250 driver to it and maps
 * the IRQ through ACPI. Without it, under hardware-reduced ACPI (no legacy PIC, so no
 * pre-assigned ISA IRQs) the legacy probe finds the port at "irq = 4" but that IRQ never
 * reaches an IOAPIC pin: the kernel console (polled) works, and the first tty write that waits
 * for the THRE interrupt (init's messages) blocks forever. Firecracker's DSDT has the same.
 */
function com1Aml(): Uint8Array {
  const crs = concat([
    ioPortDescriptor(COM1_PORT, 8),
    Uint8Array.of(0x22, (1 << COM1_ISA_IRQ) & 0xff, (1 << COM1_ISA_IRQ) >> 8), // IRQNoFlags
    Uint8Array.of(0x79, 0x00),
  ]);
  return amlScope('\\_SB_', [
    amlDevice('COM1', [
      amlNameOp('_HID', eisaId('PNP0501')),
      amlNameOp('_UID', amlInteger(0)),
      amlNameOp('_CRS', amlBuffer(crs)),
    ]),
  ]);
}

export function buildDsdt(options: { pciHostBridge?: boolean; com1?: boolean } = {}): Uint8Array {
  const terms = [amlNameOp('_S5_', amlPackage([amlInteger(S5_SLP_TYP), amlInteger(S5_SLP_TYP)]))];
  if (options.com1 ?? true) terms.push(com1Aml());
  if (options.pciHostBridge ?? true) terms.push(pciHostBridgeAml());
  return sdt('DSDT', 2, concat(terms)); // revision 2: 64-bit AML integers
}

// --- fixed tables ------------------------------------------------------------------------------

export function buildFadt(dsdtAddress: number): Uint8Array {
  const body = new Uint8Array(FADT_SIZE - ACPI_HEADER_SIZE);
  const dv = new DataView(body.buffer);
  const at = (offset: number) => offset - ACPI_HEADER_SIZE; // offsets below are the spec's
  dv.setUint32(at(40), dsdtAddress, true); // DSDT
  dv.setUint16(
    at(109),
    IAPC_BOOT_ARCH_LEGACY_DEVICES | IAPC_BOOT_ARCH_8042 | IAPC_BOOT_ARCH_VGA_NOT_PRESENT,
    true,
  );
  dv.setUint32(
    at(112),
    FADT_FLAG_PWR_BUTTON |
      FADT_FLAG_SLP_BUTTON |
      FADT_FLAG_RESET_REG_SUP |
      FADT_FLAG_HW_REDUCED_ACPI,
    true,
  );
  ioPortGas(dv, at(116), ACPI_RESET_PORT); // RESET_REG
  dv.setUint8(at(128), ACPI_RESET_VALUE);
  dv.setUint8(at(131), 5); // FADT minor version: ACPI 6.5
  dv.setBigUint64(at(140), BigInt(dsdtAddress), true); // X_DSDT
  ioPortGas(dv, at(244), ACPI_SLEEP_CONTROL_PORT); // SLEEP_CONTROL_REG
  ioPortGas(dv, at(256), ACPI_SLEEP_STATUS_PORT); // SLEEP_STATUS_REG
  dv.setBigUint64(at(268), 0x4854_5245_42n, true); // hypervisor vendor identity: "BERTH"
  return sdt('FACP', 6, body);
}

export function buildMadt(options: AcpiOptions): Uint8Array {
  const { vcpus } = options;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new Error(`vCPU count: ${vcpus} is not between 1 and ${MAX_VCPUS}`);
  }
  const overrides = options.interruptOverrides ?? [];
  const body = new Uint8Array(8 + vcpus * 8 + 12 + overrides.length * 10);
  const dv = new DataView(body.buffer);
  dv.setUint32(0, LAPIC_START, true);
  dv.setUint32(4, MADT_PCAT_COMPAT, true); // KVM's irqchip does have the two 8259s
  let at = 8;
  for (let id = 0; id < vcpus; id++) {
    dv.setUint8(at, MADT_LOCAL_APIC);
    dv.setUint8(at + 1, 8);
    dv.setUint8(at + 2, id); // ACPI processor UID
    dv.setUint8(at + 3, id); // APIC ID = vCPU index, as KVM assigns them
    dv.setUint32(at + 4, 1, true); // enabled
    at += 8;
  }
  dv.setUint8(at, MADT_IO_APIC);
  dv.setUint8(at + 1, 12);
  dv.setUint8(at + 2, IOAPIC_ID);
  dv.setUint32(at + 4, IOAPIC_START, true);
  dv.setUint32(at + 8, 0, true); // GSI base
  at += 12;
  for (const o of overrides) {
    if (o.source < 0 || o.source > 15) throw new Error(`MADT: override source IRQ ${o.source}`);
    dv.setUint8(at, MADT_INTERRUPT_OVERRIDE);
    dv.setUint8(at + 1, 10);
    dv.setUint8(at + 2, 0); // ISA bus
    dv.setUint8(at + 3, o.source);
    dv.setUint32(at + 4, o.gsi, true);
    dv.setUint16(at + 8, o.flags, true);
    at += 10;
  }
  return sdt('APIC', 5, body);
}

export function buildMcfg(): Uint8Array {
  const body = new Uint8Array(8 + 16);
  const dv = new DataView(body.buffer);
  dv.setBigUint64(8, BigInt(PCI_ECAM_START), true);
  dv.setUint16(16, 0, true); // segment
  dv.setUint8(18, 0); // first bus
  dv.setUint8(19, PCI_ECAM_SIZE / (1024 * 1024) - 1); // last bus
  return sdt('MCFG', 1, body);
}

export function buildXsdt(entries: readonly number[]): Uint8Array {
  const body = new Uint8Array(entries.length * 8);
  const dv = new DataView(body.buffer);
  entries.forEach((address, i) => dv.setBigUint64(i * 8, BigInt(address), true));
  return sdt('XSDT', 1, body);
}

export function buildRsdp(xsdtAddress: number): Uint8Array {
  const rsdp = new Uint8Array(RSDP_SIZE);
  const dv = new DataView(rsdp.buffer);
  rsdp.set(ascii('RSD PTR ', 8), 0);
  rsdp.set(ascii(ACPI_OEM_ID, 6), 9);
  dv.setUint8(15, 2); // revision 2: XSDT
  dv.setUint32(16, 0, true); // no RSDT
  dv.setUint32(20, RSDP_SIZE, true);
  dv.setBigUint64(24, BigInt(xsdtAddress), true);
  rsdp[8] = checksum(rsdp.subarray(0, 20));
  rsdp[32] = checksum(rsdp);
  return rsdp;
}

// --- assembly ----------------------------------------------------------------------------------

/** Lay the tables out from ACPI_START: RSDP, XSDT, FADT, DSDT, MADT[, MCFG], 16-byte aligned. */
export function buildAcpiTables(options: AcpiOptions): AcpiTables {
  const align = (n: number) => Math.ceil(n / 16) * 16;
  const madt = buildMadt(options);
  const dsdt = buildDsdt(options);
  const mcfg = options.ecam ? buildMcfg() : null;
  const xsdtEntries = mcfg ? 3 : 2;
  const rsdpAt = ACPI_START;
  const xsdtAt = align(rsdpAt + RSDP_SIZE);
  const fadtAt = align(xsdtAt + ACPI_HEADER_SIZE + xsdtEntries * 8);
  const dsdtAt = align(fadtAt + FADT_SIZE);
  const madtAt = align(dsdtAt + dsdt.length);
  const mcfgAt = align(madtAt + madt.length);
  const end = mcfg ? mcfgAt + mcfg.length : madtAt + madt.length;
  if (end - ACPI_START > ACPI_MAX_SIZE) {
    throw new Error(`ACPI: tables need ${end - ACPI_START} bytes, more than ${ACPI_MAX_SIZE}`);
  }
  const placed: [number, Uint8Array][] = [
    [rsdpAt, buildRsdp(xsdtAt)],
    [xsdtAt, buildXsdt(mcfg ? [fadtAt, madtAt, mcfgAt] : [fadtAt, madtAt])],
    [fadtAt, buildFadt(dsdtAt)],
    [dsdtAt, dsdt],
    [madtAt, madt],
  ];
  if (mcfg) placed.push([mcfgAt, mcfg]);
  const bytes = new Uint8Array(end - ACPI_START);
  for (const [address, table] of placed) bytes.set(table, address - ACPI_START);
  const tables: Record<string, number> = { XSDT: xsdtAt, FACP: fadtAt, DSDT: dsdtAt, APIC: madtAt };
  if (mcfg) tables.MCFG = mcfgAt;
  return { base: ACPI_START, bytes, rsdp: rsdpAt, tables };
}

/** Build and write the tables; returns them (rsdp goes into the zero page). */
export function writeAcpiTables(ram: GuestRam, options: AcpiOptions): AcpiTables {
  const tables = buildAcpiTables(options);
  writeRam(ram, tables.base, tables.bytes, 'ACPI tables');
  return tables;
}
