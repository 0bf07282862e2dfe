import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  E820_RAM,
  E820_RESERVED,
  GiB,
  HIGH_RAM_START,
  MiB,
  MMIO_HOLE_START,
  PCI_ECAM_START,
  memoryLayout,
} from '../../../core/vmm/memory-layout.ts';

describe('memoryLayout', () => {
  test('a small VM has one RAM region and the usual PC holes', () => {
    const layout = memoryLayout(512 * MiB);
    assert.deepEqual(layout.ramRegions, [{ guestAddress: 0, size: 512 * MiB }]);
    assert.equal(layout.lowRamEnd, 512 * MiB);
    assert.deepEqual(layout.e820, [
      { address: 0, size: 0x9fc00, type: E820_RAM },
      { address: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
      { address: 0x100000, size: 512 * MiB - 0x100000, type: E820_RAM },
      { address: PCI_ECAM_START, size: 256 * MiB, type: E820_RESERVED },
    ]);
  });

  test('RAM past 3 GiB continues above 4 GiB, leaving the 32-bit MMIO hole free', () => {
    const layout = memoryLayout(6 * GiB);
    assert.deepEqual(layout.ramRegions, [
      { guestAddress: 0, size: 3 * GiB },
      { guestAddress: HIGH_RAM_START, size: 3 * GiB },
    ]);
    assert.equal(layout.lowRamEnd, MMIO_HOLE_START);
    const ram = layout.e820.filter((e) => e.type === E820_RAM);
    assert.equal(
      ram.reduce((n, e) => n + e.size, 0),
      6 * GiB - 0x100000 + 0x9fc00,
      'all RAM but the EBDA..1 MiB hole is usable',
    );
    assert.deepEqual(ram.at(-1), { address: 4 * GiB, size: 3 * GiB, type: E820_RAM });
    for (const e of ram) {
      assert.ok(e.address + e.size <= MMIO_HOLE_START || e.address >= 4 * GiB, 'no RAM in hole');
    }
  });

  test('exactly 3 GiB needs no high region', () => {
    assert.equal(memoryLayout(3 * GiB).ramRegions.length, 1);
  });

  test('bad sizes are refused with the reason', () => {
    assert.throws(() => memoryLayout(8 * MiB), /memory size: .* too small/);
    assert.throws(() => memoryLayout(64 * MiB + 1), /not a multiple of 4096/);
    assert.throws(() => memoryLayout(2048 * GiB), /more than 1024 GiB/);
    assert.throws(() => memoryLayout(Number.NaN), /memory size/);
  });
});
