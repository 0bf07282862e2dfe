import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HDR, parseBzImage } from '../../../core/vmm/boot/bzimage.ts';
import {
  BP_ACPI_RSDP_ADDR,
  BP_E820_ENTRIES,
  BP_E820_TABLE,
  buildZeroPage,
  placeInitrd,
  writeCmdline,
} from '../../../core/vmm/boot/zero-page.ts';
import { plainGuestRam } from '../../../core/vmm/guest-ram.ts';
import { CMDLINE_START, MiB, memoryLayout } from '../../../core/vmm/memory-layout.ts';
import { syntheticBzImage } from './fixtures.ts';

const image = parseBzImage(syntheticBzImage({ cmdlineSize: 64 }));
const layout = memoryLayout(256 * MiB);

describe('zero page', () => {
  test('carries the image header, loader fields, e820 and RSDP', () => {
    const page = buildZeroPage({
      image,
      e820: layout.e820,
      cmdlineAddress: CMDLINE_START,
      initrd: { address: 0x0f000000, size: 12345 },
      acpiRsdp: 0xe0000,
    });
    const dv = new DataView(page.buffer);
    assert.equal(page.length, 4096);
    assert.equal(dv.getUint32(HDR.header, true), 0x53726448, 'HdrS copied from the image');
    assert.equal(dv.getUint16(HDR.version, true), 0x020f);
    assert.equal(dv.getUint8(HDR.typeOfLoader), 0xff);
    assert.equal(dv.getUint8(HDR.loadflags) & 0x81, 0x81, 'LOADED_HIGH kept, CAN_USE_HEAP set');
    assert.equal(dv.getUint32(HDR.cmdLinePtr, true), CMDLINE_START);
    assert.equal(dv.getUint32(HDR.ramdiskImage, true), 0x0f000000);
    assert.equal(dv.getUint32(HDR.ramdiskSize, true), 12345);
    assert.equal(dv.getBigUint64(BP_ACPI_RSDP_ADDR, true), 0xe0000n);
    assert.equal(dv.getUint8(BP_E820_ENTRIES), layout.e820.length);
    layout.e820.forEach((entry, i) => {
      const at = BP_E820_TABLE + i * 20;
      assert.equal(Number(dv.getBigUint64(at, true)), entry.address);
      assert.equal(Number(dv.getBigUint64(at + 8, true)), entry.size);
      assert.equal(dv.getUint32(at + 16, true), entry.type);
    });
  });

  test('no initrd leaves ramdisk fields zero', () => {
    const dv = new DataView(
      buildZeroPage({ image, e820: layout.e820, cmdlineAddress: CMDLINE_START }).buffer,
    );
    assert.equal(dv.getUint32(HDR.ramdiskImage, true), 0);
    assert.equal(dv.getUint32(HDR.ramdiskSize, true), 0);
  });

  test('too many e820 entries are refused', () => {
    const e820 = Array.from({ length: 129 }, (_, i) => ({
      address: i * 4096,
      size: 4096,
      type: 1 as const,
    }));
    assert.throws(() => buildZeroPage({ image, e820, cmdlineAddress: CMDLINE_START }), /e820: 129/);
  });
});

describe('initrd placement', () => {
  test('goes to the top of low RAM, page-aligned', () => {
    const placed = placeInitrd(layout, image, 0x2000000, 5000);
    assert.equal(placed.address % 4096, 0);
    assert.ok(placed.address + 5000 <= 256 * MiB);
    assert.ok(placed.address + 5000 > 256 * MiB - 4096 - 5000);
  });

  test('stays below initrd_addr_max', () => {
    const capped = parseBzImage(syntheticBzImage({ initrdAddrMax: 0x7ffffff }));
    const placed = placeInitrd(layout, capped, 0x2000000, 1 * MiB);
    assert.ok(placed.address + 1 * MiB - 1 <= 0x7ffffff);
    assert.equal(placed.address, 0x8000000 - 1 * MiB);
  });

  test('an initrd that would overlap the kernel is refused', () => {
    assert.throws(() => placeInitrd(layout, image, 0x2000000, 250 * MiB), /initrd too big/);
    assert.throws(() => placeInitrd(layout, image, 0x2000000, 0), /initrd: size 0/);
  });
});

describe('command line', () => {
  test('is written NUL-terminated at CMDLINE_START', () => {
    const { ram, buffers } = plainGuestRam(layout.ramRegions);
    buffers[0]!.fill(0xaa, CMDLINE_START, CMDLINE_START + 64);
    assert.equal(writeCmdline(ram, image, 'console=ttyS0'), CMDLINE_START);
    const bytes = buffers[0]!.subarray(CMDLINE_START, CMDLINE_START + 14);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 13)), 'console=ttyS0');
    assert.equal(bytes[13], 0);
  });

  test('longer than cmdline_size is refused, exactly cmdline_size is fine', () => {
    const { ram } = plainGuestRam(layout.ramRegions);
    writeCmdline(ram, image, 'x'.repeat(64));
    assert.throws(
      () => writeCmdline(ram, image, 'x'.repeat(65)),
      /command line too long: 65 bytes.*64 \(cmdline_size\)/,
    );
    assert.throws(() => writeCmdline(ram, image, 'a\0b'), /NUL/);
  });
});
