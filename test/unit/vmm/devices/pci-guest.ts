// A simulated guest for the PCI tests: port and MMIO accesses as a vCPU would make them, and the
// steps Linux's PCI core and virtio_pci_modern take (type-1 config reads, BAR sizing, the
// capability walk, reset, feature negotiation, queue setup, MSI-X programming, DRIVER_OK).
import {
  type Bus,
  createMmioBus,
  createPioBus,
  readLe,
  readLe64,
  writeLe,
} from '../../../../core/vmm/devices/bus.ts';
import { PciHostBridge } from '../../../../core/vmm/devices/pci/host-bridge.ts';

export class Guest {
  readonly pio: Bus;
  readonly mmio: Bus;
  readonly pci: PciHostBridge;
  readonly log: string[] = [];

  constructor() {
    const log = (line: string) => this.log.push(line);
    this.pio = createPioBus({ log });
    this.mmio = createMmioBus({ log });
    this.pci = new PciHostBridge({ mmio: this.mmio, log });
    this.pci.attach(this.pio);
  }

  outb(port: number, value: number): void {
    this.out(port, 1, value);
  }
  outw(port: number, value: number): void {
    this.out(port, 2, value);
  }
  outl(port: number, value: number): void {
    this.out(port, 4, value);
  }
  out(port: number, size: number, value: number): void {
    const data = new Uint8Array(size);
    writeLe(data, value);
    this.pio.write(port, data);
  }
  inb(port: number): number {
    return readLe(this.pio.read(port, 1));
  }
  inw(port: number): number {
    return readLe(this.pio.read(port, 2));
  }
  inl(port: number): number {
    return readLe(this.pio.read(port, 4));
  }

  readMem(address: number, size: number): number {
    return readLe(this.mmio.read(address, size));
  }
  readMem64(address: number): bigint {
    return readLe64(this.mmio.read(address, 8));
  }
  writeMem(address: number, size: number, value: number | bigint): void {
    const data = new Uint8Array(size);
    writeLe(data, value);
    this.mmio.write(address, data);
  }

  /** Type-1 configuration read, as arch/x86/pci/direct.c does it. */
  cfgRead(device: number, register: number, size: 1 | 2 | 4): number {
    this.outl(0xcf8, (0x80000000 | (device << 11) | (register & 0xfc)) >>> 0);
    const port = 0xcfc + (register & 3);
    return size === 1 ? this.inb(port) : size === 2 ? this.inw(port) : this.inl(port);
  }

  cfgWrite(device: number, register: number, size: 1 | 2 | 4, value: number): void {
    this.outl(0xcf8, (0x80000000 | (device << 11) | (register & 0xfc)) >>> 0);
    this.out(0xcfc + (register & 3), size, value);
  }

  /** Sizes a 64-bit memory BAR as drivers/pci/probe.c does: decode off, all-ones, read back. */
  sizeBar64(device: number, index: number): { size: number; flags: number } {
    const offset = 0x10 + 4 * index;
    const command = this.cfgRead(device, 0x04, 2);
    this.cfgWrite(device, 0x04, 2, command & ~0x3);
    const lowOrig = this.cfgRead(device, offset, 4);
    const highOrig = this.cfgRead(device, offset + 4, 4);
    this.cfgWrite(device, offset, 4, 0xffffffff);
    this.cfgWrite(device, offset + 4, 4, 0xffffffff);
    const low = this.cfgRead(device, offset, 4);
    const high = this.cfgRead(device, offset + 4, 4);
    this.cfgWrite(device, offset, 4, lowOrig);
    this.cfgWrite(device, offset + 4, 4, highOrig);
    this.cfgWrite(device, 0x04, 2, command);
    const mask = (BigInt(high) << 32n) | BigInt(low & 0xfffffff0);
    const size = Number((~mask & 0xffffffffffffffffn) + 1n);
    return { size, flags: low & 0xf };
  }

  assignBar64(device: number, index: number, address: number): void {
    const offset = 0x10 + 4 * index;
    this.cfgWrite(device, offset, 4, address % 2 ** 32);
    this.cfgWrite(device, offset + 4, 4, Math.floor(address / 2 ** 32));
  }

  /** The capability list: [offset, id] pairs. */
  capabilities(device: number): [number, number][] {
    const out: [number, number][] = [];
    if ((this.cfgRead(device, 0x06, 2) & 0x10) === 0) return out;
    let at = this.cfgRead(device, 0x34, 1) & 0xfc;
    for (let guard = 0; at !== 0 && guard < 48; guard++) {
      out.push([at, this.cfgRead(device, at, 1)]);
      at = this.cfgRead(device, at + 1, 1) & 0xfc;
    }
    return out;
  }
}
