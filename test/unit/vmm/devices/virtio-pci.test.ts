// The virtio-pci modern transport driven the way Linux's virtio_pci_modern drives it, against the
// real virtio-rng model: enumeration over 0xCF8/0xCFC, BAR sizing and placement, the capability
// walk, reset, feature negotiation, MSI-X, a queue in buffer-backed guest memory, DRIVER_OK and
// a kick through the notify address. Then a hostile driver.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GuestMemory } from '../../../../core/devices/guest-memory.ts';
import { VirtioRngDevice } from '../../../../core/devices/rng/index.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  bit,
  type DeviceContext,
  type VirtioDevice,
} from '../../../../core/devices/virtio-device.ts';
import type { MsiMessage } from '../../../../core/vmm/devices/pci/msix.ts';
import {
  VIRTIO_MSI_NO_VECTOR,
  VirtioPciDevice,
  VirtioStatus,
} from '../../../../core/vmm/devices/pci/virtio-pci.ts';
import { GuestRam, VirtqDriver } from '../../../support/virtq-driver.ts';
import { Guest } from './pci-guest.ts';

const BAR_ADDRESS = 0xc000_0000;
const MSI_ADDRESS = 0xfee0_0000;

// Common configuration offsets.
const C = {
  dfselect: 0x00,
  df: 0x04,
  gfselect: 0x08,
  gf: 0x0c,
  msix: 0x10,
  numQueues: 0x12,
  status: 0x14,
  generation: 0x15,
  qselect: 0x16,
  qsize: 0x18,
  qmsix: 0x1a,
  qenable: 0x1c,
  qnotifyOff: 0x1e,
  qdesc: 0x20,
  qdriver: 0x28,
  qdevice: 0x30,
};

interface Caps {
  common: number;
  notify: number;
  multiplier: number;
  isr: number;
  device: number | null;
  msixCap: number;
  msixTable: number;
  msixPba: number;
  msixVectors: number;
}

/** A device with a config space and three queues, which records what the transport does. */
class ProbeDevice implements VirtioDevice {
  readonly type = 19;
  readonly name = 'probe';
  readonly queueCount = 3;
  readonly maxQueueSize = 64;
  readonly features = bit(VIRTIO_F_VERSION_1) | bit(0n);
  readonly space = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  context: DeviceContext | null = null;
  readonly writes: [number, number[]][] = [];
  config(): Uint8Array {
    return this.space;
  }
  writeConfig(offset: number, data: Uint8Array): void {
    this.writes.push([offset, [...data]]);
  }
  activate(context: DeviceContext): void {
    this.context = context;
  }
  notify(): void {}
  reset(): void {
    this.context = null;
  }
}

function machine(device: VirtioDevice = new VirtioRngDevice()) {
  const guest = new Guest();
  const ram = new GuestRam({ size: 1 << 20, base: 0x10000 });
  const msis: MsiMessage[] = [];
  const irqs: boolean[] = [];
  const vpci = new VirtioPciDevice({
    device,
    memory: ram.memory,
    signalMsi: (m) => msis.push(m),
    irq: (level) => irqs.push(level),
    log: (line) => guest.log.push(line),
  });
  const slot = guest.pci.addDevice(vpci.config, 'virtio-rng');
  const driver = new LinuxDriver(guest, slot);
  return { guest, ram, msis, irqs, device, vpci, slot, driver };
}

/** What drivers/virtio/virtio_pci_modern*.c and the virtio core do, step by step. */
class LinuxDriver {
  caps!: Caps;
  constructor(
    readonly guest: Guest,
    readonly slot: number,
  ) {}

  common(offset: number, size: number): number {
    return this.guest.readMem(BAR_ADDRESS + this.caps.common + offset, size);
  }
  setCommon(offset: number, size: number, value: number): void {
    this.guest.writeMem(BAR_ADDRESS + this.caps.common + offset, size, value);
  }
  get status(): number {
    return this.common(C.status, 1);
  }

  /** pci_scan_slot + pci_read_bases + pci_assign_resource + pci_enable_device + set_master. */
  enumerate(): void {
    const g = this.guest;
    const { size, flags } = g.sizeBar64(this.slot, 0);
    assert.equal(size, 0x8000);
    assert.equal(flags, 0x4, '64-bit, non-prefetchable memory BAR');
    g.assignBar64(this.slot, 0, BAR_ADDRESS);
    g.cfgWrite(this.slot, 0x04, 2, g.cfgRead(this.slot, 0x04, 2) | 0x6);
    this.caps = this.walkCapabilities();
  }

  /** virtio_pci_find_capability for each cfg_type, and the MSI-X capability. */
  walkCapabilities(): Caps {
    const g = this.guest;
    const caps: Partial<Caps> = { device: null };
    for (const [at, id] of g.capabilities(this.slot)) {
      if (id === 0x11) {
        caps.msixCap = at;
        caps.msixVectors = (g.cfgRead(this.slot, at + 2, 2) & 0x7ff) + 1;
        const table = g.cfgRead(this.slot, at + 4, 4);
        const pba = g.cfgRead(this.slot, at + 8, 4);
        assert.equal(table & 7, 0, 'table in BAR 0');
        assert.equal(pba & 7, 0, 'PBA in BAR 0');
        caps.msixTable = table & ~7;
        caps.msixPba = pba & ~7;
        continue;
      }
      if (id !== 0x09) continue;
      const capLen = g.cfgRead(this.slot, at + 2, 1);
      const type = g.cfgRead(this.slot, at + 3, 1);
      const bar = g.cfgRead(this.slot, at + 4, 1);
      const offset = g.cfgRead(this.slot, at + 8, 4);
      const length = g.cfgRead(this.slot, at + 12, 4);
      assert.equal(bar, 0);
      if (type === 1) {
        assert.ok(length >= 0x38, 'common cfg covers struct virtio_pci_common_cfg');
        caps.common = offset;
      } else if (type === 2) {
        assert.equal(capLen, 20);
        caps.notify = offset;
        caps.multiplier = g.cfgRead(this.slot, at + 16, 4);
      } else if (type === 3) caps.isr = offset;
      else if (type === 4) caps.device = offset;
    }
    for (const key of ['common', 'notify', 'isr', 'msixCap'] as const) {
      assert.notEqual(caps[key], undefined, `capability ${key} found`);
    }
    return caps as Caps;
  }

  /** vp_reset: write 0, wait for 0. */
  reset(): void {
    this.setCommon(C.status, 1, 0);
    assert.equal(this.status, 0);
  }

  addStatus(bits: number): void {
    this.setCommon(C.status, 1, this.status | bits);
  }

  deviceFeatures(): bigint {
    this.setCommon(C.dfselect, 4, 0);
    const low = this.common(C.df, 4);
    this.setCommon(C.dfselect, 4, 1);
    const high = this.common(C.df, 4);
    return (BigInt(high) << 32n) | BigInt(low);
  }

  setDriverFeatures(features: bigint): void {
    this.setCommon(C.gfselect, 4, 0);
    this.setCommon(C.gf, 4, Number(features & 0xffffffffn));
    this.setCommon(C.gfselect, 4, 1);
    this.setCommon(C.gf, 4, Number(features >> 32n));
  }

  /** pci_alloc_irq_vectors + msi_domain: program and unmask each vector, enable MSI-X. */
  enableMsix(vectors: number): void {
    const g = this.guest;
    for (let v = 0; v < vectors; v++) {
      const entry = BAR_ADDRESS + this.caps.msixTable + 16 * v;
      g.writeMem(entry, 4, MSI_ADDRESS);
      g.writeMem(entry + 4, 4, 0);
      g.writeMem(entry + 8, 4, 0x30 + v);
      g.writeMem(entry + 12, 4, 0); // unmask
    }
    const control = g.cfgRead(this.slot, this.caps.msixCap + 2, 2);
    g.cfgWrite(this.slot, this.caps.msixCap + 2, 2, control | 0x8000);
  }

  /** vp_modern_setup_vq / vp_active_vq. */
  setupQueue(index: number, vq: VirtqDriver, vector: number): void {
    this.setCommon(C.qselect, 2, index);
    const max = this.common(C.qsize, 2);
    assert.ok(max >= vq.size, `queue ${index} offers ${max} entries`);
    assert.equal(this.common(C.qenable, 2), 0);
    this.setCommon(C.qsize, 2, vq.size);
    const { descTable, availRing, usedRing } = vq.layout;
    // vp_iowrite64_twopart: low dword then high dword.
    for (const [offset, address] of [
      [C.qdesc, descTable],
      [C.qdriver, availRing],
      [C.qdevice, usedRing],
    ] as const) {
      this.setCommon(offset, 4, address % 2 ** 32);
      this.setCommon(offset + 4, 4, Math.floor(address / 2 ** 32));
    }
    this.setCommon(C.qmsix, 2, vector);
    assert.equal(this.common(C.qmsix, 2), vector, 'vector accepted');
    this.setCommon(C.qenable, 2, 1);
  }

  notifyAddress(index: number): number {
    this.setCommon(C.qselect, 2, index);
    const off = this.common(C.qnotifyOff, 2);
    return BAR_ADDRESS + this.caps.notify + off * this.caps.multiplier;
  }

  kick(index: number): void {
    this.guest.writeMem(this.notifyAddress(index), 2, index);
  }

  /** The whole probe up to FEATURES_OK. */
  negotiate(accept: bigint): void {
    this.reset();
    this.addStatus(VirtioStatus.ACKNOWLEDGE);
    this.addStatus(VirtioStatus.DRIVER);
    const offered = this.deviceFeatures();
    this.setDriverFeatures(offered & accept);
    this.addStatus(VirtioStatus.FEATURES_OK);
    assert.ok(this.status & VirtioStatus.FEATURES_OK, 'FEATURES_OK stays set');
  }
}

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('virtio-pci modern transport', () => {
  test('enumeration finds the device with the virtio 1.x IDs', () => {
    const m = machine();
    const g = m.guest;
    const found: number[] = [];
    for (let dev = 0; dev < 32; dev++) {
      const vendor = g.cfgRead(dev, 0x00, 2);
      if (vendor === 0xffff) continue;
      found.push(dev);
    }
    assert.deepEqual(found, [0, m.slot]);
    assert.equal(g.cfgRead(m.slot, 0x00, 2), 0x1af4);
    assert.equal(g.cfgRead(m.slot, 0x02, 2), 0x1040 + 4, 'entropy device');
    assert.equal(g.cfgRead(m.slot, 0x08, 1), 1, 'revision 1: modern only');
    assert.equal(g.cfgRead(m.slot, 0x2c, 2), 0x1af4, 'subsystem vendor');
    assert.ok(g.cfgRead(m.slot, 0x2e, 2) >= 0x40, 'subsystem id >= 0x40');
    assert.equal(g.cfgRead(m.slot, 0x0e, 1), 0, 'type 0 header');
    assert.equal(g.cfgRead(m.slot, 0x3d, 1), 1, 'INTA#');
  });

  test('a Linux-style probe serves an entropy request and signals its MSI-X vector', () => {
    const m = machine();
    const d = m.driver;
    d.enumerate();
    assert.equal(m.vpci.notifyAddress(0), BAR_ADDRESS + d.caps.notify);
    assert.equal(d.caps.multiplier, 4);
    assert.equal(d.caps.msixVectors, 2, 'one per queue plus config');
    assert.equal(d.caps.device, null, 'virtio-rng has no device config');
    assert.equal(d.common(C.numQueues, 2), 1);

    const offered = d.deviceFeatures();
    assert.ok(offered & bit(VIRTIO_F_VERSION_1));
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX));

    d.enableMsix(2);
    d.setCommon(C.msix, 2, 0);
    assert.equal(d.common(C.msix, 2), 0, 'config vector accepted');
    const vq = new VirtqDriver(m.ram, { size: 16, eventIdx: true });
    d.setupQueue(0, vq, 1);
    d.addStatus(VirtioStatus.DRIVER_OK);
    assert.equal(d.status, 0xf);
    assert.ok(m.vpci.isActive);

    const chain = vq.submit({ writable: [64] });
    d.kick(0);
    assert.deepEqual(vq.takeUsed(), [{ id: chain.head, len: 64 }]);
    assert.ok(
      vq.written(chain).some((b) => b !== 0),
      'random bytes written',
    );
    assert.deepEqual(m.msis, [{ address: BigInt(MSI_ADDRESS), data: 0x31 }]);
    assert.deepEqual(m.irqs, [], 'no INTx while MSI-X is on');

    // A second request, kicked through the ioeventfd path; like virtqueue_enable_cb, the driver
    // asks for an interrupt after the entry it has seen.
    m.ram.setU16(vq.fields.usedEvent, 1);
    const again = vq.submit({ writable: [8, 8] });
    m.vpci.kick(0);
    assert.deepEqual(vq.takeUsed(), [{ id: again.head, len: 16 }]);
    assert.equal(m.msis.length, 2);

    // Reset stops the device; status reads 0 and the queue is disabled.
    d.reset();
    assert.equal(m.vpci.isActive, false);
    d.setCommon(C.qselect, 2, 0);
    assert.equal(d.common(C.qenable, 2), 0);
    assert.equal(d.common(C.qmsix, 2), VIRTIO_MSI_NO_VECTOR);
  });

  test('a masked MSI-X vector is held pending and delivered when unmasked', () => {
    const m = machine();
    const d = m.driver;
    d.enumerate();
    d.negotiate(bit(VIRTIO_F_VERSION_1));
    d.enableMsix(2);
    const vq = new VirtqDriver(m.ram, { size: 8 });
    d.setupQueue(0, vq, 1);
    d.addStatus(VirtioStatus.DRIVER_OK);
    const entry1 = BAR_ADDRESS + d.caps.msixTable + 16;
    m.guest.writeMem(entry1 + 12, 4, 1); // mask vector 1
    vq.submit({ writable: [4] });
    d.kick(0);
    assert.equal(m.msis.length, 0);
    assert.equal(m.guest.readMem(BAR_ADDRESS + d.caps.msixPba, 8) & 0b10, 0b10, 'pending bit');
    m.guest.writeMem(entry1 + 12, 4, 0);
    assert.equal(m.msis.length, 1);
    assert.equal(m.guest.readMem(BAR_ADDRESS + d.caps.msixPba, 8), 0);
  });

  test('without MSI-X the interrupt goes through the ISR and INTx', () => {
    const m = machine();
    const d = m.driver;
    d.enumerate();
    d.negotiate(bit(VIRTIO_F_VERSION_1));
    const vq = new VirtqDriver(m.ram, { size: 8 });
    d.setupQueue(0, vq, VIRTIO_MSI_NO_VECTOR);
    d.addStatus(VirtioStatus.DRIVER_OK);
    vq.submit({ writable: [16] });
    d.kick(0);
    assert.equal(vq.takeUsed().length, 1);
    assert.deepEqual(m.irqs, [true]);
    const isr = m.guest.readMem(BAR_ADDRESS + d.caps.isr, 1);
    assert.equal(isr, 1, 'queue interrupt');
    assert.deepEqual(m.irqs, [true, false], 'reading the ISR deasserts the line');
    assert.equal(m.guest.readMem(BAR_ADDRESS + d.caps.isr, 1), 0, 'read clears');
  });

  test('device config, a device asking for a reset, and the config interrupt over INTx', () => {
    const probe = new ProbeDevice();
    const m = machine(probe);
    const d = m.driver;
    d.enumerate();
    assert.notEqual(d.caps.device, null);
    assert.equal(d.common(C.numQueues, 2), 3);
    const cfg = BAR_ADDRESS + d.caps.device!;
    assert.equal(m.guest.readMem(cfg, 4), 0x04030201);
    assert.equal(m.guest.readMem64(cfg), 0x0807060504030201n);
    m.guest.writeMem(cfg + 2, 2, 0xbeef);
    m.guest.writeMem(cfg + 7, 2, 0xbeef); // past the end: refused
    assert.deepEqual(probe.writes, [[2, [0xef, 0xbe]]]);

    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(0n));
    const vq = new VirtqDriver(m.ram, { size: 8 });
    d.setupQueue(1, vq, VIRTIO_MSI_NO_VECTOR); // queues 0 and 2 left disabled
    d.addStatus(VirtioStatus.DRIVER_OK);
    const context = probe.context!;
    assert.equal(context.features, bit(VIRTIO_F_VERSION_1) | bit(0n));
    assert.equal(context.queues.length, 3);
    assert.equal(context.queues[0], null);
    assert.equal(context.queues[1]!.size, 8);
    assert.equal(context.queues[2], null);
    assert.equal(context.memory as GuestMemory, m.ram.memory);

    context.needsReset('ring broken');
    assert.ok(d.status & VirtioStatus.DEVICE_NEEDS_RESET);
    assert.deepEqual(m.irqs, [true]);
    assert.equal(m.guest.readMem(BAR_ADDRESS + d.caps.isr, 1), 2, 'config change');
    d.reset();
    assert.equal(d.status, 0);
    assert.equal(probe.context, null, 'device reset');
  });

  test('the BAR decodes only while memory decoding is on', () => {
    const m = machine();
    const d = m.driver;
    d.enumerate();
    assert.equal(d.common(C.numQueues, 2), 1);
    m.guest.cfgWrite(m.slot, 0x04, 2, 0);
    assert.equal(m.guest.readMem(BAR_ADDRESS + C.numQueues, 2), 0xffff, 'unclaimed');
    assert.equal(m.vpci.notifyAddress(0), null);
    m.guest.cfgWrite(m.slot, 0x04, 2, 0x6);
    assert.equal(d.common(C.numQueues, 2), 1);
  });
});

describe('virtio-pci against a hostile driver', () => {
  function ready() {
    const m = machine();
    m.driver.enumerate();
    return m;
  }

  test('bad queue sizes are refused and the size stays', () => {
    const m = ready();
    const d = m.driver;
    d.setCommon(C.qselect, 2, 0);
    for (const bad of [0, 3, 100, 512, 0xffff]) {
      d.setCommon(C.qsize, 2, bad);
      assert.equal(d.common(C.qsize, 2), 256, `size ${bad} refused`);
    }
    d.setCommon(C.qsize, 2, 32);
    assert.equal(d.common(C.qsize, 2), 32);
  });

  test('a queue outside guest memory sets DEVICE_NEEDS_RESET and raises the config vector', () => {
    const m = ready();
    const d = m.driver;
    d.negotiate(bit(VIRTIO_F_VERSION_1));
    d.enableMsix(2);
    d.setCommon(C.msix, 2, 0);
    d.setCommon(C.qselect, 2, 0);
    d.setCommon(C.qsize, 2, 16);
    d.setCommon(C.qdesc, 4, 0xdead0000);
    d.setCommon(C.qdesc + 4, 4, 0x7);
    d.setCommon(C.qdriver, 4, 0x20000);
    d.setCommon(C.qdevice, 4, 0x30000);
    d.setCommon(C.qenable, 2, 1);
    d.addStatus(VirtioStatus.DRIVER_OK);
    assert.ok(d.status & VirtioStatus.DEVICE_NEEDS_RESET);
    assert.equal(m.vpci.isActive, false);
    assert.deepEqual(m.msis, [{ address: BigInt(MSI_ADDRESS), data: 0x30 }]);
    assert.ok(m.guest.log.some((l) => /needs a reset: queue 0: descriptor table/.test(l)));
    d.kick(0); // ignored, no throw
    d.reset();
    assert.equal(d.status, 0);

    // A misaligned ring is refused the same way.
    d.negotiate(bit(VIRTIO_F_VERSION_1));
    const vq = new VirtqDriver(m.ram, { size: 8, layout: { descTable: 0x20008 } });
    d.setupQueue(0, vq, VIRTIO_MSI_NO_VECTOR);
    d.addStatus(VirtioStatus.DRIVER_OK);
    assert.ok(d.status & VirtioStatus.DEVICE_NEEDS_RESET);
  });

  test('FEATURES_OK with features never offered stays clear, and DRIVER_OK is refused', () => {
    const m = ready();
    const d = m.driver;
    d.reset();
    d.addStatus(VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
    d.setDriverFeatures(bit(VIRTIO_F_VERSION_1) | bit(0n) | bit(35n));
    d.addStatus(VirtioStatus.FEATURES_OK);
    assert.equal(d.status & VirtioStatus.FEATURES_OK, 0);
    d.addStatus(VirtioStatus.DRIVER_OK);
    assert.equal(d.status & VirtioStatus.DRIVER_OK, 0);
    assert.equal(m.vpci.isActive, false);

    // Without VERSION_1 (a legacy driver) too.
    d.reset();
    d.addStatus(VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
    d.setDriverFeatures(0n);
    d.addStatus(VirtioStatus.FEATURES_OK);
    assert.equal(d.status & VirtioStatus.FEATURES_OK, 0);

    // Features cannot change after FEATURES_OK.
    d.negotiate(bit(VIRTIO_F_VERSION_1));
    d.setCommon(C.gfselect, 4, 0);
    d.setCommon(C.gf, 4, 0xffffffff);
    assert.equal(d.common(C.gf, 4), 0);
  });

  test('an out-of-range queue_select reads as no queue and ignores writes', () => {
    const m = ready();
    const d = m.driver;
    for (const index of [1, 7, 0xffff]) {
      d.setCommon(C.qselect, 2, index);
      assert.equal(d.common(C.qselect, 2), index);
      assert.equal(d.common(C.qsize, 2), 0);
      d.setCommon(C.qsize, 2, 16);
      d.setCommon(C.qenable, 2, 1);
      d.setCommon(C.qdesc, 4, 0x1000);
      d.setCommon(C.qmsix, 2, 1);
      assert.equal(d.common(C.qsize, 2), 0);
      assert.equal(d.common(C.qenable, 2), 0);
      assert.equal(d.common(C.qdesc, 4), 0);
    }
    m.vpci.kick(5);
    m.guest.writeMem(BAR_ADDRESS + d.caps.notify + 4 * 9, 2, 9);
  });

  test('odd-sized accesses are refused or read consistently, never thrown', () => {
    const m = ready();
    const d = m.driver;
    const base = BAR_ADDRESS + d.caps.common;
    // A byte write to a 32-bit field is refused.
    m.guest.writeMem(base + C.dfselect, 1, 1);
    assert.equal(d.common(C.dfselect, 4), 0);
    // Reads of any width see the same bytes.
    assert.equal(d.common(C.numQueues, 1), 1);
    assert.equal(Number(m.guest.readMem64(base + C.msix) >> 16n) & 0xffff, 1);
    // A 64-bit write of a queue address is accepted, as is each half.
    d.setCommon(C.qselect, 2, 0);
    m.guest.writeMem(base + C.qdesc, 8, 0x1_2345_6000n);
    assert.equal(m.guest.readMem64(base + C.qdesc), 0x1_2345_6000n);
    // A 3-byte write, a write straddling two fields, writes to read-only fields.
    m.guest.writeMem(base + C.qsize, 3, 0xffffff);
    m.guest.writeMem(base + C.qsize + 1, 2, 0);
    m.guest.writeMem(base + C.numQueues, 2, 9);
    assert.equal(d.common(C.numQueues, 2), 1);
    assert.equal(d.common(C.qsize, 2), 256);
    assert.ok(m.vpci.refusedAccesses >= 4);
    // Config space: 3-byte and straddling accesses through 0xCFC.
    m.guest.outl(0xcf8, 0x80000000 | (m.slot << 11));
    m.guest.out(0xcfd, 4, 0xffffffff);
    assert.equal(m.guest.inl(0xcfe), 0xffffffff, 'straddles the data window: unclaimed');
    assert.equal(m.guest.cfgRead(m.slot, 0x00, 2), 0x1af4);
  });

  test('random guest accesses to the BAR and config space never throw', () => {
    const m = ready();
    const d = m.driver;
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX));
    d.enableMsix(2);
    const vq = new VirtqDriver(m.ram, { size: 16 });
    d.setupQueue(0, vq, 1);
    d.addStatus(VirtioStatus.DRIVER_OK);
    const random = seededRandom(42);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const sizes = [1, 2, 3, 4, 8] as const;
    for (let i = 0; i < 20000; i++) {
      const size = pick(sizes);
      const value = Math.floor(random() * 2 ** 32);
      const kind = random();
      if (kind < 0.6) {
        // Mostly the common config and notify area, sometimes anywhere in the BAR.
        const offset = random() < 0.7 ? Math.floor(random() * 0x40) : Math.floor(random() * 0x8000);
        if (random() < 0.5) m.guest.readMem(BAR_ADDRESS + offset, size);
        else m.guest.writeMem(BAR_ADDRESS + offset, size, value);
      } else if (kind < 0.9) {
        const register = Math.floor(random() * 256);
        const s = pick([1, 2, 4] as const);
        // Leave the BAR and command alone half the time so the BAR stays reachable.
        if (random() < 0.5) m.guest.cfgRead(m.slot, register, s);
        else if (register >= 0x40) m.guest.cfgWrite(m.slot, register, s, value);
      } else {
        if (random() < 0.3 && vq.freeDescriptors > 0)
          vq.submit({ writable: [1 + Math.floor(random() * 64)] });
        m.vpci.kick(Math.floor(random() * 3));
        vq.takeUsed();
      }
    }
    assert.ok(true, 'survived');
  });
});
