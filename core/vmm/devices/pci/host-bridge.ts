// PCI bus 0 behind a host bridge: configuration mechanism #1 (an address register at 0xCF8, a
// data window at 0xCFC-0xCFF, any byte/word/dword inside it) and, for the same configuration
// spaces, ECAM (one 4 KiB page per function in an MMIO window). Device 0 is the host bridge
// itself. A function's memory BARs are mapped on the MMIO bus while its command register enables
// memory decoding and the guest has given them an address; a placement that collides with
// something is refused and logged, never thrown (the guest chooses it).
import { type Bus, type BusDevice, type BusRange, hex, readLe, writeLe } from '../bus.ts';
import { PCIE_CONFIG_SIZE, PciConfigSpace } from './config-space.ts';

export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** ECAM for bus 0 only: 32 devices x 8 functions x 4 KiB. */
export const ECAM_BUS_SIZE = 1 << 20;
export const PCI_MAX_DEVICES = 32;

const CONFIG_ENABLE = 0x80000000;

export interface PciHostBridgeOptions {
  /** Where BARs are mapped. */
  mmio: Bus;
  log?: (line: string) => void;
  /** The host bridge's IDs (default Intel 0x8086:0x0d57, as Firecracker and cloud-hypervisor). */
  vendorId?: number;
  deviceId?: number;
}

interface Slot {
  config: PciConfigSpace;
  name: string;
  mapped: Map<number, BusRange>;
}

export class PciHostBridge {
  private readonly mmio: Bus;
  private readonly log: (line: string) => void;
  /** Function 0 of each device number; multi-function devices are not needed. */
  private readonly slots: (Slot | null)[] = Array.from({ length: PCI_MAX_DEVICES }, () => null);
  private address = 0;

  /** 0xCF8-0xCFF: the address register and the data window. */
  readonly configPorts: BusDevice = {
    read: (offset, data) => this.readPorts(offset, data),
    write: (offset, data) => this.writePorts(offset, data),
  };

  /** ECAM for bus 0 (register it at the window's base, ECAM_BUS_SIZE long). */
  readonly ecam: BusDevice = {
    read: (offset, data) => {
      const { config, register } = this.ecamTarget(offset);
      if (!config || register + data.length > PCIE_CONFIG_SIZE || !validSize(data.length)) {
        data.fill(0xff);
        return;
      }
      writeLe(data, config.read(register, data.length));
    },
    write: (offset, data) => {
      const { config, register } = this.ecamTarget(offset);
      if (!config || !validSize(data.length)) return;
      config.write(register, data.length, readLe(data));
    },
  };

  constructor(options: PciHostBridgeOptions) {
    this.mmio = options.mmio;
    this.log = options.log ?? (() => {});
    const bridge = new PciConfigSpace({
      vendorId: options.vendorId ?? 0x8086,
      deviceId: options.deviceId ?? 0x0d57,
      classCode: 0x060000,
    });
    this.addDevice(bridge, 'host bridge', 0);
  }

  /** Claims 0xCF8-0xCFF on the PIO bus. */
  attach(pio: Bus): void {
    pio.register(PCI_CONFIG_ADDRESS_PORT, 8, this.configPorts, 'pci config');
  }

  /** Puts a function on the bus; returns its device number (the first free one by default). */
  addDevice(config: PciConfigSpace, name: string, device?: number): number {
    const number = device ?? this.slots.findIndex((s) => s === null);
    if (!(number >= 0 && number < PCI_MAX_DEVICES) || this.slots[number]) {
      throw new Error(`pci: no free device number for ${name}`);
    }
    const slot: Slot = { config, name, mapped: new Map() };
    this.slots[number] = slot;
    config.onDecodeChange = () => this.remap(slot);
    return number;
  }

  configOf(device: number): PciConfigSpace | null {
    return this.slots[device]?.config ?? null;
  }

  private target(): { config: PciConfigSpace | null; register: number } {
    const a = this.address;
    if ((a & CONFIG_ENABLE) === 0) return { config: null, register: 0 };
    const bus = (a >>> 16) & 0xff;
    const device = (a >>> 11) & 0x1f;
    const fn = (a >>> 8) & 0x7;
    const register = a & 0xfc;
    if (bus !== 0 || fn !== 0) return { config: null, register };
    return { config: this.slots[device]?.config ?? null, register };
  }

  private ecamTarget(offset: number): { config: PciConfigSpace | null; register: number } {
    const bus = Math.floor(offset / ECAM_BUS_SIZE);
    const device = (offset >>> 15) & 0x1f;
    const fn = (offset >>> 12) & 0x7;
    const register = offset & 0xfff;
    if (bus !== 0 || fn !== 0) return { config: null, register };
    return { config: this.slots[device]?.config ?? null, register };
  }

  private readPorts(offset: number, data: Uint8Array): void {
    if (offset < 4) {
      // The address register answers dword reads only; smaller ones are other chipset ports.
      if (offset === 0 && data.length === 4) writeLe(data, this.address);
      else data.fill(0xff);
      return;
    }
    const within = offset - 4;
    const { config, register } = this.target();
    if (!config || within + data.length > 4 || !validSize(data.length)) {
      data.fill(0xff);
      return;
    }
    writeLe(data, config.read(register + within, data.length));
  }

  private writePorts(offset: number, data: Uint8Array): void {
    if (offset < 4) {
      if (offset === 0 && data.length === 4) this.address = readLe(data) >>> 0;
      return;
    }
    const within = offset - 4;
    const { config, register } = this.target();
    if (!config || within + data.length > 4 || !validSize(data.length)) return;
    config.write(register + within, data.length, readLe(data));
  }

  /** Maps each memory BAR the guest placed, if decoding is on; unmaps the rest. */
  private remap(slot: Slot): void {
    const enabled = slot.config.memoryEnabled;
    for (const bar of slot.config.barList()) {
      const current = slot.mapped.get(bar.index);
      const want = enabled && bar.address !== 0;
      if (current && want && current.base === bar.address) continue;
      if (current) {
        this.mmio.unregister(current);
        slot.mapped.delete(bar.index);
      }
      if (!want) continue;
      const result = this.mmio.tryRegister(
        bar.address,
        bar.size,
        bar.device,
        `${slot.name} BAR${bar.index}`,
      );
      if (typeof result === 'string') this.log(`pci: BAR not mapped: ${result}`);
      else {
        slot.mapped.set(bar.index, result);
        this.log(`pci: ${slot.name} BAR${bar.index} at ${hex(bar.address)} (+${hex(bar.size)})`);
      }
    }
  }
}

function validSize(size: number): boolean {
  return size === 1 || size === 2 || size === 4;
}
