// PCI configuration mechanism #1, ECAM on the same spaces, and the BAR sizing protocol.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readLe, writeLe } from '../../../../core/vmm/devices/bus.ts';
import { PciConfigSpace } from '../../../../core/vmm/devices/pci/config-space.ts';
import { ECAM_BUS_SIZE } from '../../../../core/vmm/devices/pci/host-bridge.ts';
import { Guest } from './pci-guest.ts';

const ECAM_BASE = 0xe000_0000;

function withDevice() {
  const guest = new Guest();
  guest.mmio.register(ECAM_BASE, ECAM_BUS_SIZE, guest.pci.ecam, 'ecam');
  const barDevice = { read: (_o: number, d: Uint8Array) => d.fill(0x5a), write: () => {} };
  const config = new PciConfigSpace({ vendorId: 0x1234, deviceId: 0x5678, classCode: 0x020000 });
  config.addBar({ index: 0, size: 0x1000, device: barDevice });
  config.addBar({ index: 2, size: 0x4000, is64bit: true, prefetchable: true, device: barDevice });
  const slot = guest.pci.addDevice(config, 'test');
  return { guest, config, slot };
}

describe('PCI host bridge', () => {
  test('device 0 is the host bridge; empty slots and disabled accesses read all-ones', () => {
    const { guest } = withDevice();
    assert.equal(guest.cfgRead(0, 0, 4), 0x0d578086);
    assert.equal(guest.cfgRead(0, 0x0a, 2), 0x0600, 'class: host bridge');
    assert.equal(guest.cfgRead(5, 0, 4), 0xffffffff);
    guest.outl(0xcf8, 0x00000000); // enable bit clear
    assert.equal(guest.inl(0xcfc), 0xffffffff);
    guest.outl(0xcf8, 0x80000100); // function 1
    assert.equal(guest.inl(0xcfc), 0xffffffff);
    guest.outl(0xcf8, 0x80010000); // bus 1
    assert.equal(guest.inl(0xcfc), 0xffffffff);
    guest.outl(0xcf8, 0x80000804);
    assert.equal(guest.inl(0xcf8), 0x80000804, 'the address register reads back');
  });

  test('byte, word and dword accesses in the data window', () => {
    const { guest, slot } = withDevice();
    assert.equal(guest.cfgRead(slot, 0x00, 4), 0x56781234);
    assert.equal(guest.cfgRead(slot, 0x02, 2), 0x5678);
    assert.equal(guest.cfgRead(slot, 0x03, 1), 0x56);
    assert.equal(guest.cfgRead(slot, 0x0b, 1), 0x02);
    guest.cfgWrite(slot, 0x3c, 1, 11);
    assert.equal(guest.cfgRead(slot, 0x3c, 1), 11);
    guest.cfgWrite(slot, 0x00, 4, 0); // read-only IDs
    assert.equal(guest.cfgRead(slot, 0x00, 2), 0x1234);
  });

  test('BAR sizing: all-ones reads back the size mask; 64-bit BARs take two registers', () => {
    const { guest, slot, config } = withDevice();
    guest.cfgWrite(slot, 0x10, 4, 0xffffffff);
    assert.equal(guest.cfgRead(slot, 0x10, 4), 0xfffff000);
    guest.cfgWrite(slot, 0x14, 4, 0xffffffff);
    assert.equal(guest.cfgRead(slot, 0x14, 4), 0, 'no BAR 1');
    const sized = guest.sizeBar64(slot, 2);
    assert.deepEqual(sized, { size: 0x4000, flags: 0x0c });
    guest.assignBar64(slot, 2, 0x1_0000_0000);
    assert.equal(config.barAddress(2), 0x1_0000_0000);
    guest.cfgWrite(slot, 0x10, 4, 0xc000_0000);
    assert.equal(config.barAddress(0), 0xc000_0000);
    // Not decoded until the command register enables memory.
    assert.equal(guest.readMem(0xc000_0000, 1), 0xff);
    guest.cfgWrite(slot, 0x04, 2, 0x2);
    assert.equal(guest.readMem(0xc000_0000, 1), 0x5a);
    assert.equal(guest.readMem(0x1_0000_0010, 4), 0x5a5a5a5a);
    // Moving a BAR onto another is refused and logged, not thrown.
    guest.cfgWrite(slot, 0x10, 4, ECAM_BASE);
    assert.ok(guest.log.some((l) => /BAR not mapped: .*overlaps ecam/.test(l)));
    assert.equal(guest.readMem(0xc000_0000, 1), 0xff, 'unmapped from the old place');
    guest.cfgWrite(slot, 0x04, 2, 0);
    assert.equal(guest.readMem(0x1_0000_0010, 1), 0xff);
  });

  test('ECAM reaches the same configuration spaces', () => {
    const { guest, slot } = withDevice();
    const ecam = (device: number, register: number, size: number) =>
      guest.readMem(ECAM_BASE + (device << 15) + register, size);
    assert.equal(ecam(slot, 0, 4), 0x56781234);
    assert.equal(ecam(0, 0, 2), 0x8086);
    assert.equal(ecam(7, 0, 4), 0xffffffff);
    const data = new Uint8Array(1);
    writeLe(data, 9);
    guest.mmio.write(ECAM_BASE + (slot << 15) + 0x3c, data);
    assert.equal(guest.cfgRead(slot, 0x3c, 1), 9);
    assert.equal(ecam(slot, 0x100, 4), 0, 'extended space exists, empty');
    assert.equal(readLe(guest.mmio.read(ECAM_BASE + (slot << 15) + 0xffe, 2)), 0);
  });
});
