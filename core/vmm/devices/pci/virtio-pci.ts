// The virtio 1.2 PCI modern transport (virtio 1.2, 4.1) carrying a VirtioDevice in process: the
// PCI identity (vendor 0x1af4, device 0x1040 + type, revision 1), vendor capabilities pointing
// into one 64-bit memory BAR (common configuration, notifications, ISR, device configuration)
// and MSI-X with its table and PBA in the same BAR; INTx through the ISR when MSI-X is off.
// It does for our VMM what VhostUserSession does for QEMU: negotiate features, collect each
// queue's size and addresses, and on DRIVER_OK build the SplitQueues and activate the device.
//
// The driver is untrusted: a bad queue size, a ring outside guest memory, unoffered features,
// an out-of-range queue_select or an access of the wrong width never throws. Bad values are
// refused the way the spec lets a device refuse them (FEATURES_OK stays clear, NO_VECTOR reads
// back, DEVICE_NEEDS_RESET is set) and logged.
import { SplitQueue } from '../../../devices/queue/index.ts';
import type { GuestMemory } from '../../../devices/guest-memory.ts';
import {
  bit,
  hasFeature,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type VirtioDevice,
} from '../../../devices/virtio-device.ts';
import { type BusDevice, readLe, readLe64 } from '../bus.ts';
import { PciConfigSpace } from './config-space.ts';
import { type MsiMessage, MsixTable, PCI_CAP_ID_MSIX } from './msix.ts';

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;

/** Device status bits (virtio 1.2, 2.1). */
export const VirtioStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** virtio_pci_cap cfg_type values. */
export const VirtioPciCapType = { COMMON: 1, NOTIFY: 2, ISR: 3, DEVICE: 4, PCI: 5 } as const;
const PCI_CAP_ID_VENDOR = 0x09;

/** Where each structure sits in the BAR. */
export const VirtioPciLayout = {
  bar: 0,
  barSize: 0x8000,
  common: 0x0000,
  commonLength: 0x38,
  isr: 0x1000,
  device: 0x2000,
  deviceLength: 0x1000,
  notify: 0x3000,
  notifyLength: 0x1000,
  notifyMultiplier: 4,
  msixTable: 0x4000,
  msixPba: 0x6000,
} as const;

// Common configuration offsets (struct virtio_pci_common_cfg).
const DEVICE_FEATURE_SELECT = 0x00;
const DEVICE_FEATURE = 0x04;
const DRIVER_FEATURE_SELECT = 0x08;
const DRIVER_FEATURE = 0x0c;
const CONFIG_MSIX_VECTOR = 0x10;
const NUM_QUEUES = 0x12;
const DEVICE_STATUS = 0x14;
const CONFIG_GENERATION = 0x15;
const QUEUE_SELECT = 0x16;
const QUEUE_SIZE = 0x18;
const QUEUE_MSIX_VECTOR = 0x1a;
const QUEUE_ENABLE = 0x1c;
const QUEUE_NOTIFY_OFF = 0x1e;
const QUEUE_DESC = 0x20;
const QUEUE_DRIVER = 0x28;
const QUEUE_DEVICE = 0x30;

const ISR_QUEUE = 0x1;
const ISR_CONFIG = 0x2;

/** Transport features this implementation cannot honour; never offered whatever the device says. */
const UNSUPPORTED_FEATURES =
  bit(34n) | // RING_PACKED
  bit(37n) | // SR_IOV
  bit(38n) | // NOTIFICATION_DATA
  bit(39n) | // NOTIF_CONFIG_DATA
  bit(40n); // RING_RESET

const MAX_INDIRECT_ENTRIES = 1024;

export interface VirtioPciOptions {
  device: VirtioDevice;
  memory: GuestMemory;
  /** Deliver an MSI-X message (the machine maps it to a KVM MSI route / irqfd). */
  signalMsi: (message: MsiMessage) => void;
  /** The INTx line (INTA#) level, used while MSI-X is disabled. */
  irq?: (level: boolean) => void;
  log?: (line: string) => void;
}

interface QueueState {
  size: number;
  vector: number;
  enabled: boolean;
  desc: number;
  driver: number;
  device: number;
}

function pciClass(type: number): number {
  switch (type) {
    case VirtioDeviceType.net:
      return 0x020000; // network controller
    case VirtioDeviceType.block:
      return 0x010000; // mass storage (SCSI, as QEMU)
    default:
      return 0xff0000; // unclassified
  }
}

export class VirtioPciDevice {
  readonly device: VirtioDevice;
  readonly config: PciConfigSpace;
  readonly msix: MsixTable;
  /** Guest accesses refused (wrong width or offset), for tests and stats. */
  refusedAccesses = 0;

  private readonly memory: GuestMemory;
  private readonly log: (line: string) => void;
  private readonly irq: (level: boolean) => void;
  private readonly offered: bigint;
  private readonly queues: QueueState[];
  private readonly msixCapability: number;
  private splitQueues: (SplitQueue | null)[] = [];
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = 0n;
  private msixConfig = VIRTIO_MSI_NO_VECTOR;
  private status = 0;
  private configGeneration = 0;
  private queueSelect = 0;
  private isr = 0;
  private irqLevel = false;
  private active = false;
  private needsResetReason: string | null = null;

  /** The BAR's contents: dispatches to the structures by offset. */
  readonly bar: BusDevice = {
    read: (offset, data) => this.readBar(offset, data),
    write: (offset, data) => this.writeBar(offset, data),
  };

  constructor(options: VirtioPciOptions) {
    const { device } = options;
    this.device = device;
    this.memory = options.memory;
    this.log = options.log ?? (() => {});
    this.irq = options.irq ?? (() => {});
    this.offered = device.features & ~UNSUPPORTED_FEATURES;
    this.queues = Array.from({ length: device.queueCount }, () => this.freshQueue());
    this.msix = new MsixTable(device.queueCount + 1, options.signalMsi);

    const L = VirtioPciLayout;
    if (device.queueCount * L.notifyMultiplier > L.notifyLength || this.msix.tableSize > 0x2000) {
      throw new RangeError(`virtio-pci: ${device.name} has too many queues`);
    }
    this.config = new PciConfigSpace({
      vendorId: VIRTIO_PCI_VENDOR_ID,
      deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.type,
      classCode: pciClass(device.type),
      revision: 1,
      subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
      subsystemId: 0x40,
      interruptPin: 1,
    });
    this.config.addBar({ index: L.bar, size: L.barSize, is64bit: true, device: this.bar });
    this.addVirtioCapability(VirtioPciCapType.COMMON, L.common, L.commonLength);
    this.addVirtioCapability(
      VirtioPciCapType.NOTIFY,
      L.notify,
      device.queueCount * L.notifyMultiplier,
      L.notifyMultiplier,
    );
    this.addVirtioCapability(VirtioPciCapType.ISR, L.isr, 1);
    const configLength = device.config().length;
    if (configLength > 0) {
      this.addVirtioCapability(VirtioPciCapType.DEVICE, L.device, Math.min(configLength, 0x1000));
    }
    this.msixCapability = this.config.addCapability(
      PCI_CAP_ID_MSIX,
      this.msix.capabilityBody(L.bar, L.msixTable, L.msixPba),
      { writable: MsixTable.capabilityWriteMask(), onWrite: () => this.onMsixControl() },
    );
  }

  get deviceStatus(): number {
    return this.status;
  }

  get isActive(): boolean {
    return this.active;
  }

  /** The guest address a kick of queue `index` is written to, or null before the BAR is mapped. */
  notifyAddress(index: number): number | null {
    const base = this.config.barAddress(VirtioPciLayout.bar);
    if (base === 0 || !this.config.memoryEnabled) return null;
    return base + VirtioPciLayout.notify + index * VirtioPciLayout.notifyMultiplier;
  }

  /** A kick of queue `index` (a notify write, or the machine's ioeventfd for it). */
  kick(index: number): void {
    if (!this.active || this.needsResetReason !== null) return;
    if (!this.queues[index]?.enabled) return;
    this.device.notify(index);
  }

  /** The device's configuration changed: bump the generation and interrupt the driver. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    this.configInterrupt();
  }

  private freshQueue(): QueueState {
    return {
      size: this.device.maxQueueSize,
      vector: VIRTIO_MSI_NO_VECTOR,
      enabled: false,
      desc: 0,
      driver: 0,
      device: 0,
    };
  }

  private addVirtioCapability(type: number, offset: number, length: number, multiplier?: number) {
    const body = new Uint8Array(multiplier === undefined ? 14 : 18);
    const view = new DataView(body.buffer);
    body[0] = body.length + 2; // cap_len
    body[1] = type;
    body[2] = VirtioPciLayout.bar;
    view.setUint32(6, offset, true);
    view.setUint32(10, length, true);
    if (multiplier !== undefined) view.setUint32(14, multiplier, true);
    this.config.addCapability(PCI_CAP_ID_VENDOR, body);
  }

  private onMsixControl(): void {
    this.msix.setControl(this.config.get16(this.msixCapability + 2));
    this.updateIntx();
  }

  // --- the BAR ---

  private readBar(offset: number, data: Uint8Array): void {
    const L = VirtioPciLayout;
    data.fill(0);
    if (offset < L.common + 0x1000) this.readCommon(offset, data);
    else if (offset < L.isr + 0x1000) this.readIsr(offset - L.isr, data);
    else if (offset < L.device + L.deviceLength) this.readDeviceConfig(offset - L.device, data);
    else if (offset < L.notify + L.notifyLength)
      return; // notify reads as 0
    else if (offset < L.msixPba) this.msix.readTable(offset - L.msixTable, data);
    else this.msix.readPba(offset - L.msixPba, data);
  }

  private writeBar(offset: number, data: Uint8Array): void {
    const L = VirtioPciLayout;
    if (offset < L.common + 0x1000) this.writeCommon(offset, data);
    else if (offset < L.isr + 0x1000)
      this.refusedAccesses++; // ISR is read-only
    else if (offset < L.device + L.deviceLength) this.writeDeviceConfig(offset - L.device, data);
    else if (offset < L.notify + L.notifyLength) this.writeNotify(offset - L.notify);
    else if (offset < L.msixPba) this.msix.writeTable(offset - L.msixTable, data);
    else this.refusedAccesses++; // the PBA is read-only
  }

  private readIsr(offset: number, data: Uint8Array): void {
    if (offset !== 0) return;
    // Reading the ISR acknowledges it and deasserts INTx.
    data[0] = this.isr;
    this.isr = 0;
    this.updateIntx();
  }

  private readDeviceConfig(offset: number, data: Uint8Array): void {
    const space = this.device.config();
    if (offset + data.length <= space.length)
      data.set(space.subarray(offset, offset + data.length));
  }

  private writeDeviceConfig(offset: number, data: Uint8Array): void {
    const length = this.device.config().length;
    if (offset + data.length > length) {
      this.refusedAccesses++;
      return;
    }
    this.device.writeConfig?.(offset, data.slice());
  }

  private writeNotify(offset: number): void {
    const multiplier = VirtioPciLayout.notifyMultiplier;
    if (offset % multiplier !== 0) {
      this.refusedAccesses++;
      return;
    }
    this.kick(offset / multiplier);
  }

  // --- common configuration ---

  private selected(): QueueState | null {
    return this.queues[this.queueSelect] ?? null;
  }

  /** The common configuration as the driver would see it now (reads have no side effects). */
  private commonSnapshot(): Uint8Array {
    const bytes = new Uint8Array(0x38);
    const view = new DataView(bytes.buffer);
    const word = (features: bigint, select: number) =>
      select <= 1 ? Number((features >> BigInt(32 * select)) & 0xffffffffn) : 0;
    view.setUint32(DEVICE_FEATURE_SELECT, this.deviceFeatureSelect, true);
    view.setUint32(DEVICE_FEATURE, word(this.offered, this.deviceFeatureSelect), true);
    view.setUint32(DRIVER_FEATURE_SELECT, this.driverFeatureSelect, true);
    view.setUint32(DRIVER_FEATURE, word(this.driverFeatures, this.driverFeatureSelect), true);
    view.setUint16(CONFIG_MSIX_VECTOR, this.msixConfig, true);
    view.setUint16(NUM_QUEUES, this.queues.length, true);
    view.setUint8(DEVICE_STATUS, this.status);
    view.setUint8(CONFIG_GENERATION, this.configGeneration);
    view.setUint16(QUEUE_SELECT, this.queueSelect, true);
    const q = this.selected();
    if (q) {
      view.setUint16(QUEUE_SIZE, q.size, true);
      view.setUint16(QUEUE_MSIX_VECTOR, q.vector, true);
      view.setUint16(QUEUE_ENABLE, q.enabled ? 1 : 0, true);
      view.setUint16(QUEUE_NOTIFY_OFF, this.queueSelect, true);
      view.setBigUint64(QUEUE_DESC, BigInt(q.desc), true);
      view.setBigUint64(QUEUE_DRIVER, BigInt(q.driver), true);
      view.setBigUint64(QUEUE_DEVICE, BigInt(q.device), true);
    } else {
      // No such queue: size 0 says so (4.1.4.3); the rest reads as 0 too.
      view.setUint16(QUEUE_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR, true);
    }
    return bytes;
  }

  private readCommon(offset: number, data: Uint8Array): void {
    const snapshot = this.commonSnapshot();
    if (offset + data.length <= snapshot.length) {
      data.set(snapshot.subarray(offset, offset + data.length));
    }
  }

  private writeCommon(offset: number, data: Uint8Array): void {
    const size = data.length;
    const value = size <= 4 ? readLe(data) : 0;
    const address = this.addressField(offset, size);
    if (address !== null) {
      this.writeQueueAddress(address.field, address.half, size === 8 ? readLe64(data) : value);
      return;
    }
    const fieldSize: Record<number, number> = {
      [DEVICE_FEATURE_SELECT]: 4,
      [DRIVER_FEATURE_SELECT]: 4,
      [DRIVER_FEATURE]: 4,
      [CONFIG_MSIX_VECTOR]: 2,
      [DEVICE_STATUS]: 1,
      [QUEUE_SELECT]: 2,
      [QUEUE_SIZE]: 2,
      [QUEUE_MSIX_VECTOR]: 2,
      [QUEUE_ENABLE]: 2,
    };
    if (fieldSize[offset] !== size) {
      // Read-only fields, and accesses not of a field's own width (4.1.3.1).
      this.refusedAccesses++;
      return;
    }
    switch (offset) {
      case DEVICE_FEATURE_SELECT:
        this.deviceFeatureSelect = value;
        return;
      case DRIVER_FEATURE_SELECT:
        this.driverFeatureSelect = value;
        return;
      case DRIVER_FEATURE:
        this.writeDriverFeatures(value);
        return;
      case CONFIG_MSIX_VECTOR:
        this.msixConfig = this.mapVector(value);
        return;
      case DEVICE_STATUS:
        this.writeStatus(value);
        return;
      case QUEUE_SELECT:
        this.queueSelect = value;
        return;
      case QUEUE_SIZE:
        this.writeQueueSize(value);
        return;
      case QUEUE_MSIX_VECTOR: {
        const q = this.selected();
        if (q) q.vector = this.mapVector(value);
        return;
      }
      case QUEUE_ENABLE: {
        const q = this.selected();
        // Only 1 may be written (4.1.4.3.2); 0 would be a queue reset, which we do not offer.
        if (q && value === 1 && !this.active) q.enabled = true;
        else if (value !== 1) this.refusedAccesses++;
        return;
      }
    }
  }

  /** A 64-bit queue address field, whole or one of its 32-bit halves. */
  private addressField(
    offset: number,
    size: number,
  ): { field: 'desc' | 'driver' | 'device'; half: 0 | 1 | null } | null {
    const fields = [
      [QUEUE_DESC, 'desc'],
      [QUEUE_DRIVER, 'driver'],
      [QUEUE_DEVICE, 'device'],
    ] as const;
    for (const [start, field] of fields) {
      if (offset === start && size === 8) return { field, half: null };
      if (offset === start && size === 4) return { field, half: 0 };
      if (offset === start + 4 && size === 4) return { field, half: 1 };
    }
    return null;
  }

  private writeQueueAddress(
    field: 'desc' | 'driver' | 'device',
    half: 0 | 1 | null,
    value: number | bigint,
  ): void {
    const q = this.selected();
    if (!q || q.enabled) {
      // Addresses are fixed once the queue is enabled (4.1.4.3.2).
      this.refusedAccesses++;
      return;
    }
    const current = q[field];
    const low = current % 2 ** 32;
    const high = Math.floor(current / 2 ** 32);
    let next: number;
    if (half === null) next = Number(BigInt(value) & 0xffffffffffffffffn);
    else if (half === 0) next = high * 2 ** 32 + Number(value);
    else next = Number(value) * 2 ** 32 + low;
    q[field] = next;
  }

  private writeDriverFeatures(value: number): void {
    if ((this.status & VirtioStatus.FEATURES_OK) !== 0 || this.driverFeatureSelect > 1) {
      this.refusedAccesses++;
      return;
    }
    const shift = BigInt(32 * this.driverFeatureSelect);
    this.driverFeatures =
      (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(value >>> 0) << shift);
  }

  private writeQueueSize(value: number): void {
    const q = this.selected();
    if (!q || q.enabled) return;
    const max = this.device.maxQueueSize;
    // Split queues need a power of two (2.7); a value the device cannot use is refused, and the
    // driver reads back the size that stays.
    if (value >= 1 && value <= max && (value & (value - 1)) === 0) q.size = value;
    else {
      this.refusedAccesses++;
      this.log(`${this.device.name}: queue ${this.queueSelect}: size ${value} refused`);
    }
  }

  private mapVector(vector: number): number {
    return vector < this.msix.vectorCount ? vector : VIRTIO_MSI_NO_VECTOR;
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const before = this.status;
    let next =
      (value & ~VirtioStatus.DEVICE_NEEDS_RESET) | (before & VirtioStatus.DEVICE_NEEDS_RESET);
    const rising = next & ~before;
    if ((rising & VirtioStatus.FEATURES_OK) !== 0 && !this.featuresAcceptable()) {
      next &= ~VirtioStatus.FEATURES_OK;
    }
    if ((rising & VirtioStatus.DRIVER_OK) !== 0 && (next & VirtioStatus.FEATURES_OK) === 0) {
      this.log(`${this.device.name}: DRIVER_OK without FEATURES_OK ignored`);
      next &= ~VirtioStatus.DRIVER_OK;
    }
    this.status = next & 0xff;
    if ((next & rising & VirtioStatus.DRIVER_OK) !== 0) this.activate();
  }

  private featuresAcceptable(): boolean {
    const unoffered = this.driverFeatures & ~this.offered;
    if (unoffered !== 0n) {
      this.log(
        `${this.device.name}: driver accepted features 0x${unoffered.toString(16)} never offered`,
      );
      return false;
    }
    if (!hasFeature(this.driverFeatures, VIRTIO_F_VERSION_1)) {
      this.log(`${this.device.name}: driver did not accept VERSION_1 (legacy is not supported)`);
      return false;
    }
    return true;
  }

  private activate(): void {
    const features = this.driverFeatures;
    const options = {
      eventIdx: hasFeature(features, VIRTIO_F_EVENT_IDX),
      indirectDesc: hasFeature(features, VIRTIO_F_INDIRECT_DESC),
    };
    const queues = this.queues.map((q) =>
      q.enabled
        ? new SplitQueue(
            this.memory,
            { size: q.size, descTable: q.desc, availRing: q.driver, usedRing: q.device },
            { ...options, maxIndirectEntries: Math.max(q.size, MAX_INDIRECT_ENTRIES) },
          )
        : null,
    );
    const broken = queues.findIndex((q) => q?.broken);
    if (broken >= 0) {
      this.needsReset(`queue ${broken}: ${queues[broken]!.broken!}`);
      return;
    }
    this.splitQueues = queues;
    this.active = true;
    this.device.activate({
      memory: this.memory,
      queues,
      features,
      interrupt: (index) => this.queueInterrupt(index),
      needsReset: (reason) => this.needsReset(reason),
    });
    this.log(`${this.device.name} active: ${queues.filter((q) => q).length} queue(s)`);
    // Buffers may have been made available before DRIVER_OK: look once.
    for (let i = 0; i < queues.length; i++) if (queues[i]) this.kick(i);
  }

  /** Driver reset (status 0): back to the state after power-on; the device stops. */
  private reset(): void {
    if (this.active) this.device.reset();
    this.active = false;
    this.splitQueues = [];
    this.needsResetReason = null;
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.msixConfig = VIRTIO_MSI_NO_VECTOR;
    this.queueSelect = 0;
    for (let i = 0; i < this.queues.length; i++) this.queues[i] = this.freshQueue();
    this.isr = 0;
    this.updateIntx();
  }

  private needsReset(reason: string): void {
    if (this.needsResetReason !== null) return;
    this.needsResetReason = reason;
    this.status |= VirtioStatus.DEVICE_NEEDS_RESET;
    this.log(`${this.device.name} needs a reset: ${reason}`);
    this.configInterrupt();
  }

  // --- interrupts ---

  private queueInterrupt(index: number): void {
    const q = this.queues[index];
    if (!q || !this.active) return;
    if (this.msix.enabled) {
      if (q.vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(q.vector);
      return;
    }
    this.isr |= ISR_QUEUE;
    this.updateIntx();
  }

  private configInterrupt(): void {
    // With MSI-X the ISR is not used (4.1.4.5): a bit left there would assert INTx later.
    if (this.msix.enabled) {
      if (this.msixConfig !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(this.msixConfig);
      return;
    }
    this.isr |= ISR_CONFIG;
    this.updateIntx();
  }

  private updateIntx(): void {
    const level = !this.msix.enabled && this.isr !== 0 && !this.config.intxDisabled;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }

  /** Where the transport stands (for a debug dump). */
  debugState(): object {
    return {
      device: this.device.name,
      status: this.status,
      active: this.active,
      needsReset: this.needsResetReason,
      features: `0x${this.driverFeatures.toString(16)}`,
      msix: this.msix.enabled,
      queues: this.queues.map((q, i) => ({
        ...q,
        ring: this.splitQueues[i]?.debugState() ?? null,
      })),
    };
  }
}
