// The configuration space of one PCI function (type 0 header), as the guest reads and writes it:
// identity registers, the command register, a capability list, and BARs with the sizing protocol
// (write all-ones, read back the size mask with the type bits; 64-bit memory BARs take two
// registers). Every byte has a write mask, so a guest write can only change what software may
// change; nothing here throws for anything the guest does.
import type { BusDevice } from '../bus.ts';

export const PCI_CONFIG_SIZE = 256;
/** PCIe extended configuration space, reached through ECAM. */
export const PCIE_CONFIG_SIZE = 4096;

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const PCI_COMMAND_IO = 0x0001;
export const PCI_COMMAND_MEMORY = 0x0002;
export const PCI_COMMAND_MASTER = 0x0004;
export const PCI_COMMAND_INTX_DISABLE = 0x0400;
const COMMAND_WRITABLE = 0x0547; // IO, MEMORY, MASTER, PARITY, SERR, INTX_DISABLE
const PCI_STATUS_CAP_LIST = 0x0010;

export const PCI_BAR_MEM_TYPE_64 = 0x04;
export const PCI_BAR_MEM_PREFETCH = 0x08;
const BAR_COUNT = 6;

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  /** Base class, subclass, programming interface as one 24-bit value (0x060000: host bridge). */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 1 = INTA# ... 4 = INTD#; 0 (default) = no INTx. */
  interruptPin?: number;
}

export interface BarSpec {
  /** 0-5; a 64-bit BAR also takes index + 1. */
  index: number;
  /** A power of two, at least 16 bytes. */
  size: number;
  is64bit?: boolean;
  prefetchable?: boolean;
  /** The device behind the BAR (offsets are into the BAR). */
  device: BusDevice;
}

interface Bar extends BarSpec {
  /** The address the guest programmed (low bits masked), 0 if none. */
  address: number;
}

export class PciConfigSpace {
  readonly bytes: Uint8Array;
  private readonly writeMask: Uint8Array;
  private readonly bars: (Bar | null)[] = Array.from({ length: BAR_COUNT }, () => null);
  /**
   * Raw BAR register values as the guest sees them (sizing writes included): a view of `bytes`,
   * so that `bytes` always holds exactly what a read returns (the VMM's vCPU threads answer
   * reads from it directly). Little-endian, as x86 and PCI are.
   */
  private readonly barRegisters: Uint32Array;
  private lastCapability = 0;
  private nextCapabilityOffset = 0x40;
  private readonly writeHooks: { start: number; end: number; hook: () => void }[] = [];

  /** After the command register or a BAR changed: the owner remaps the BARs. */
  onDecodeChange: () => void = () => {};

  constructor(identity: PciIdentity, size = PCIE_CONFIG_SIZE) {
    this.bytes = new Uint8Array(size);
    this.barRegisters = new Uint32Array(this.bytes.buffer, PCI_BAR0, BAR_COUNT);
    this.writeMask = new Uint8Array(size);
    this.set16(PCI_VENDOR_ID, identity.vendorId);
    this.set16(PCI_DEVICE_ID, identity.deviceId);
    this.bytes[PCI_REVISION_ID] = identity.revision ?? 0;
    this.bytes[PCI_CLASS_PROG] = identity.classCode & 0xff;
    this.bytes[PCI_CLASS_PROG + 1] = (identity.classCode >> 8) & 0xff;
    this.bytes[PCI_CLASS_PROG + 2] = (identity.classCode >> 16) & 0xff;
    this.set16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId ?? 0);
    this.set16(PCI_SUBSYSTEM_ID, identity.subsystemId ?? 0);
    this.bytes[PCI_INTERRUPT_PIN] = identity.interruptPin ?? 0;
    this.setWritable(PCI_COMMAND, 2, COMMAND_WRITABLE);
    this.setWritable(0x0c, 2, 0xffff); // cache line size, latency timer
    this.setWritable(PCI_INTERRUPT_LINE, 1, 0xff);
  }

  get command(): number {
    return this.get16(PCI_COMMAND);
  }

  get memoryEnabled(): boolean {
    return (this.command & PCI_COMMAND_MEMORY) !== 0;
  }

  get busMasterEnabled(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  get intxDisabled(): boolean {
    return (this.command & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  addBar(spec: BarSpec): void {
    const { index, size } = spec;
    const slots = spec.is64bit ? 2 : 1;
    if (!(Number.isInteger(index) && index >= 0 && index + slots <= BAR_COUNT)) {
      throw new RangeError(`PCI BAR ${index} does not exist (or has no room for 64 bits)`);
    }
    if (!(Number.isSafeInteger(size) && size >= 16 && Number.isInteger(Math.log2(size)))) {
      throw new RangeError(`PCI BAR ${index}: size ${size} is not a power of two >= 16`);
    }
    if (!spec.is64bit && size > 2 ** 31) throw new RangeError(`PCI BAR ${index}: too large`);
    for (let i = index; i < index + slots; i++) {
      if (this.bars[i] || this.isUpperHalf(i)) throw new RangeError(`PCI BAR ${i} is taken`);
    }
    this.bars[index] = { ...spec, address: 0 };
    this.barRegisters[index] = this.barFlags(this.bars[index]!);
    if (spec.is64bit) this.barRegisters[index + 1] = 0;
  }

  /** The BARs the guest has placed, for the owner to map: index, address, size, device. */
  barList(): readonly Readonly<Bar>[] {
    return this.bars.filter((b): b is Bar => b !== null);
  }

  /** The address of BAR `index` as programmed, or 0. */
  barAddress(index: number): number {
    return this.bars[index]?.address ?? 0;
  }

  /**
   * Appends a capability (`body` starts after the ID and next bytes) and returns its offset.
   * `writable` marks bytes of the body (same indices) the guest may change; `onWrite` runs after
   * any guest write that touches the capability.
   */
  addCapability(
    id: number,
    body: Uint8Array,
    options: { writable?: Uint8Array; onWrite?: () => void } = {},
  ): number {
    const offset = this.nextCapabilityOffset;
    const length = 2 + body.length;
    if (offset + length > PCI_CONFIG_SIZE) throw new RangeError('PCI capability list is full');
    this.bytes[offset] = id;
    this.bytes[offset + 1] = 0;
    this.bytes.set(body, offset + 2);
    if (options.writable) this.writeMask.set(options.writable.subarray(0, body.length), offset + 2);
    if (this.lastCapability === 0) this.bytes[PCI_CAPABILITY_LIST] = offset;
    else this.bytes[this.lastCapability + 1] = offset;
    this.set16(PCI_STATUS, this.get16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    this.lastCapability = offset;
    this.nextCapabilityOffset = (offset + length + 3) & ~3;
    if (options.onWrite) {
      this.writeHooks.push({ start: offset, end: offset + length, hook: options.onWrite });
    }
    return offset;
  }

  /** A guest read of `size` bytes (1, 2, 4) at `offset`; past the end reads as all-ones. */
  read(offset: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.readByte(offset + i);
    return value;
  }

  write(offset: number, size: number, value: number): void {
    if (
      !(size === 1 || size === 2 || size === 4) ||
      offset < 0 ||
      offset + size > this.bytes.length
    )
      return;
    if (offset < PCI_BAR0 + 4 * BAR_COUNT && offset + size > PCI_BAR0) {
      this.writeBars(offset, size, value);
      return;
    }
    const commandBefore = this.command;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const mask = this.writeMask[at]!;
      const byte = (value >>> (8 * i)) & 0xff;
      this.bytes[at] = (this.bytes[at]! & ~mask) | (byte & mask);
    }
    if (this.command !== commandBefore) this.onDecodeChange();
    for (const { start, end, hook } of this.writeHooks) {
      if (offset < end && start < offset + size) hook();
    }
  }

  get16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }

  set16(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
    this.bytes[offset + 1] = (value >> 8) & 0xff;
  }

  private setWritable(offset: number, length: number, mask: number): void {
    for (let i = 0; i < length; i++) this.writeMask[offset + i] = (mask >> (8 * i)) & 0xff;
  }

  private readByte(at: number): number {
    if (at < 0 || at >= this.bytes.length) return 0xff;
    return this.bytes[at]!;
  }

  private isUpperHalf(index: number): boolean {
    const below = index > 0 ? this.bars[index - 1] : null;
    return below?.is64bit === true;
  }

  private barFlags(bar: BarSpec): number {
    return (bar.is64bit ? PCI_BAR_MEM_TYPE_64 : 0) | (bar.prefetchable ? PCI_BAR_MEM_PREFETCH : 0);
  }

  private writeBars(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at < PCI_BAR0 || at >= PCI_BAR0 + 4 * BAR_COUNT) continue;
      const index = (at - PCI_BAR0) >> 2;
      const shift = 8 * ((at - PCI_BAR0) & 3);
      const byte = (value >>> (8 * i)) & 0xff;
      const merged = ((this.barRegisters[index]! & ~(0xff << shift)) | (byte << shift)) >>> 0;
      this.barRegisters[index] = this.maskBarRegister(index, merged);
    }
    this.updateBarAddresses();
    this.onDecodeChange();
  }

  /** What a BAR register keeps of a written value: address bits above the size, plus flags. */
  private maskBarRegister(index: number, value: number): number {
    const bar = this.bars[index];
    if (bar) {
      const lowMask = bar.size >= 2 ** 32 ? 0 : ~(bar.size - 1) >>> 0;
      return ((value & lowMask & 0xfffffff0) | this.barFlags(bar)) >>> 0;
    }
    if (this.isUpperHalf(index)) {
      const lower = this.bars[index - 1]!;
      const highMask = lower.size > 2 ** 32 ? ~(lower.size / 2 ** 32 - 1) >>> 0 : 0xffffffff;
      return (value & highMask) >>> 0;
    }
    return 0; // no BAR here: reads as 0, so the sizing finds nothing
  }

  private updateBarAddresses(): void {
    for (const bar of this.bars) {
      if (!bar) continue;
      const low = (this.barRegisters[bar.index]! & 0xfffffff0) >>> 0;
      const high = bar.is64bit ? this.barRegisters[bar.index + 1]! : 0;
      bar.address = high * 2 ** 32 + low;
    }
  }
}
