import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  ACPI_POWEROFF_VALUE,
  amlPkgLength,
  buildAcpiTables,
  buildDsdt,
  eisaId,
  writeAcpiTables,
} from '../../../core/vmm/boot/acpi.ts';
import { plainGuestRam } from '../../../core/vmm/guest-ram.ts';
import {
  ACPI_SLEEP_CONTROL_PORT,
  ACPI_SLEEP_STATUS_PORT,
  ACPI_START,
  IOAPIC_START,
  LAPIC_START,
  MiB,
} from '../../../core/vmm/memory-layout.ts';

function sum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

function tableAt(all: ReturnType<typeof buildAcpiTables>, address: number) {
  const at = address - all.base;
  const dv = new DataView(all.bytes.buffer, all.bytes.byteOffset + at);
  const length = dv.getUint32(4, true);
  const bytes = all.bytes.subarray(at, at + length);
  return { bytes, dv, signature: new TextDecoder().decode(bytes.subarray(0, 4)), length };
}

describe('ACPI tables', () => {
  const all = buildAcpiTables({ vcpus: 4, ecam: true });

  test('RSDP (rev 2) checksums and points at the XSDT', () => {
    const rsdp = all.bytes.subarray(0, 36);
    assert.equal(all.rsdp, ACPI_START);
    assert.equal(new TextDecoder().decode(rsdp.subarray(0, 8)), 'RSD PTR ');
    assert.equal(sum(rsdp.subarray(0, 20)), 0);
    assert.equal(sum(rsdp), 0);
    const dv = new DataView(rsdp.buffer, rsdp.byteOffset);
    assert.equal(dv.getUint8(15), 2);
    assert.equal(Number(dv.getBigUint64(24, true)), all.tables.XSDT);
  });

  test('every table has a correct header, length and checksum', () => {
    for (const [signature, address] of Object.entries(all.tables)) {
      const t = tableAt(all, address!);
      assert.equal(t.signature, signature);
      assert.equal(t.bytes.length, t.length, `${signature} fits`);
      assert.equal(sum(t.bytes), 0, `${signature} checksum`);
      assert.equal(address! % 8, 0);
    }
  });

  test('XSDT lists FADT, MADT and MCFG', () => {
    const x = tableAt(all, all.tables.XSDT!);
    const entries = [];
    for (let at = 36; at < x.length; at += 8) entries.push(Number(x.dv.getBigUint64(at, true)));
    assert.deepEqual(entries, [all.tables.FACP, all.tables.APIC, all.tables.MCFG]);
  });

  test('FADT is hardware-reduced with sleep control/status and reset in I/O space', () => {
    const f = tableAt(all, all.tables.FACP!);
    assert.equal(f.length, 276);
    assert.equal(f.bytes[8], 6);
    assert.equal(f.dv.getUint32(40, true), all.tables.DSDT);
    assert.equal(Number(f.dv.getBigUint64(140, true)), all.tables.DSDT);
    assert.ok(f.dv.getUint32(112, true) & (1 << 20), 'HW_REDUCED_ACPI');
    assert.ok(f.dv.getUint32(112, true) & (1 << 10), 'RESET_REG_SUP');
    assert.equal(f.dv.getUint16(109, true) & 2, 2, 'i8042 present');
    assert.equal(f.bytes[244], 1, 'SystemIO');
    assert.equal(Number(f.dv.getBigUint64(248, true)), ACPI_SLEEP_CONTROL_PORT);
    assert.equal(Number(f.dv.getBigUint64(260, true)), ACPI_SLEEP_STATUS_PORT);
    assert.equal(ACPI_POWEROFF_VALUE, 0x34);
  });

  test('MADT has one enabled LAPIC per vCPU and one IOAPIC', () => {
    const m = tableAt(all, all.tables.APIC!);
    assert.equal(m.dv.getUint32(36, true), LAPIC_START);
    assert.equal(m.length, 44 + 4 * 8 + 12);
    for (let i = 0; i < 4; i++) {
      const at = 44 + i * 8;
      assert.deepEqual(
        [m.bytes[at], m.bytes[at + 1], m.bytes[at + 2], m.bytes[at + 3]],
        [0, 8, i, i],
      );
      assert.equal(m.dv.getUint32(at + 4, true), 1);
    }
    assert.equal(m.bytes[76], 1);
    assert.equal(m.dv.getUint32(80, true), IOAPIC_START);
  });

  test('interrupt source overrides are appended when asked', () => {
    const t = buildAcpiTables({ vcpus: 1, interruptOverrides: [{ source: 0, gsi: 2, flags: 0 }] });
    const m = tableAt(t, t.tables.APIC!);
    assert.equal(m.length, 44 + 8 + 12 + 10);
    assert.deepEqual([...m.bytes.subarray(64, 74)], [2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
  });

  test('DSDT holds \\_S5, COM1 and the PCI host bridge', () => {
    const d = tableAt(all, all.tables.DSDT!);
    const text = new TextDecoder('latin1').decode(d.bytes);
    assert.ok(text.includes('_S5_'));
    assert.ok(text.includes('PCI0') && text.includes('_CRS'));
    // COM1: PNP0501 with IO(Decode16, 0x3f8, 0x3f8, 1, 8) and IRQNoFlags() {4}.
    const hex = Buffer.from(d.bytes).toString('hex');
    assert.ok(text.includes('COM1'));
    assert.ok(hex.includes(Buffer.from(eisaId('PNP0501')).toString('hex')));
    assert.ok(hex.includes('4701f803f8030108' + '221000' + '7900'), 'COM1 _CRS');
    const bare = buildDsdt({ pciHostBridge: false, com1: false });
    assert.equal(bare.length, 36 + 12, 'Name(_S5_, Package(2){5, 5})');
    assert.ok(!all.tables.MCFG || buildAcpiTables({ vcpus: 1 }).tables.MCFG === undefined);
  });

  test('AML encodings', () => {
    assert.deepEqual([...amlPkgLength(5)], [6]);
    assert.deepEqual([...amlPkgLength(62)], [63]);
    assert.deepEqual([...amlPkgLength(63)], [0x41, 0x04]); // 65 = 0x41
    assert.deepEqual([...amlPkgLength(300)], [0x4e, 0x12]); // 302 = 0x12e
    assert.deepEqual([...eisaId('PNP0A03')], [0x0c, 0x41, 0xd0, 0x0a, 0x03]);
  });

  test('0 or too many vCPUs are refused', () => {
    assert.throws(() => buildAcpiTables({ vcpus: 0 }), /vCPU count: 0/);
    assert.throws(() => buildAcpiTables({ vcpus: 255 }), /vCPU count: 255/);
  });

  test('written at ACPI_START in guest RAM', () => {
    const { ram, buffers } = plainGuestRam([{ guestAddress: 0, size: 2 * MiB }]);
    const t = writeAcpiTables(ram, { vcpus: 2 });
    assert.deepEqual(buffers[0]!.subarray(ACPI_START, ACPI_START + t.bytes.length), t.bytes);
  });

  const iasl = spawnSync('iasl', ['-v']).error ? 'iasl (acpica-tools) not installed' : false;
  test('iasl disassembles every table without complaint', { skip: iasl }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-acpi-'));
    try {
      for (const [signature, address] of Object.entries(all.tables)) {
        const file = join(dir, `${signature.toLowerCase()}.dat`);
        writeFileSync(file, tableAt(all, address!).bytes);
        const out = execFileSync('iasl', ['-d', file], { encoding: 'utf8', stdio: 'pipe' });
        assert.doesNotMatch(out, /error|warning/i, signature);
        const dsl = readFileSync(file.replace(/\.dat$/, '.dsl'), 'utf8');
        assert.doesNotMatch(dsl, /Invalid|\*\*\*\*/, signature);
        if (signature === 'DSDT') {
          assert.match(dsl, /Name \(_S5, Package \(0x02\)/);
          assert.match(dsl, /EisaId \("PNP0A03"\)/);
          assert.match(dsl, /0xC0000000,\s+\/\/ Range Minimum/);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
