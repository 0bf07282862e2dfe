// A Berth microVM on the native KVM addon: guest RAM (machine-ram.ts) in KVM slots, the
// in-kernel irqchip and PIT, the platform devices on the port bus (16550 UART on COM1, i8042,
// CMOS RTC, ACPI PM ports, PCI config mechanism #1), PCI ECAM and the virtio-pci functions'
// BARs on the MMIO bus, MSI-X through KVM MSI routes and irqfds (interrupts.ts), and virtqueue
// kicks through ioeventfds where the kernel takes them (else MMIO exits reach the transport).
//
// vCPU exits are handled by exits.ts. A run ends once, with a MachineStop: poweroff (ACPI), reset
// (i8042 or ACPI reset register: restarting is the caller's decision), halt (a HLT exit, which
// only happens without an in-kernel LAPIC) or error (triple fault, internal error, failed entry,
// an exit we do not handle), which carries the serial log's tail. Nothing the guest does throws
// out of the exit handler. destroy() leaves no fd, thread or mapping.
import { readFileSync } from 'node:fs';
import type { VirtioDevice } from '../devices/virtio-device.ts';
import type { GuestMemory } from '../devices/guest-memory.ts';
import {
  close,
  eventfd,
  eventfdRead,
  FdWatcher,
  type FdWatcher as FdWatcherInstance,
  createKvmVm,
  kvmGetSupportedCpuid,
  kvmOpen,
  type CpuidEntry,
  type KvmExit,
  type KvmMsr,
  type KvmRegs,
  type KvmSregsUpdate,
  type KvmVcpu,
  type KvmVm,
} from '../native.ts';
import { AcpiPm } from './acpi-pm.ts';
import { setupLinuxBoot, type LinuxBoot } from './boot/linux-boot.ts';
import { bootSregs, writeBootGdt } from './boot/gdt.ts';
import { writeIdentityPageTables } from './boot/page-tables.ts';
import { type Bus, createMmioBus, createPioBus } from './devices/bus.ts';
import { CmosRtc } from './devices/cmos-rtc.ts';
import { I8042 } from './devices/i8042.ts';
import { PCI_INTERRUPT_LINE } from './devices/pci/config-space.ts';
import { ECAM_BUS_SIZE, PCI_MAX_DEVICES, PciHostBridge } from './devices/pci/host-bridge.ts';
import { VirtioPciDevice } from './devices/pci/virtio-pci.ts';
import {
  COM1_BASE,
  COM1_IRQ,
  UART_IER,
  UART_IER_MASK,
  UART_LSR,
  UART_PORT_COUNT,
  Uart16550,
  type UartFastPath,
} from './devices/uart-16550.ts';
import { handleExit, type StopReason } from './exits.ts';
import { InterruptController } from './interrupts.ts';
import { MachineRam } from './machine-ram.ts';
import { MiB, PCI_ECAM_START, memoryLayout, type MemoryLayout } from './memory-layout.ts';
import { SerialTail } from './serial-tail.ts';

/** Where KVM puts its TSS pages on Intel (3 pages just below the identity map), as Firecracker. */
export const KVM_TSS_ADDRESS = 0xfffbd000;
/** PCI INTx of function n goes to IOAPIC GSI 16 + (n - 1) % 8 (never a legacy ISA line). */
const PCI_INTX_FIRST_GSI = 16;
/** Lines of serial tail an error message quotes. */
const ERROR_TAIL_LINES = 20;

export interface MachineOptions {
  memoryMiB: number;
  vcpus?: number;
  /** Virtio device models, each a virtio-pci function on bus 0 (device 1, 2, ...). */
  devices?: readonly VirtioDevice[];
  /** The guest's serial output, in batches. */
  serial?: (bytes: Uint8Array) => void;
  /** VMM log lines (unclaimed accesses, devices, interrupts). */
  log?: (line: string) => void;
  /** Default /dev/kvm. */
  kvmPath?: string;
  /** Guest RAM in private transparent huge pages instead of a memfd (machine-ram.ts: opt-in). */
  hugePageRam?: boolean;
  /** Count the exits handled in JavaScript by kind and register (Machine.exitProfile). */
  profileExits?: boolean;
  /**
   * Let the vCPU threads finish the hot port accesses themselves (the UART's LSR, THR and IER,
   * PCI configuration reads; native/kvm/src/fast_io.h). Default true; false sends every access to
   * JavaScript (for comparison).
   */
  fastIo?: boolean;
}

/** The register state a vCPU starts from. */
export interface VcpuEntry {
  regs: Partial<KvmRegs>;
  sregs: KvmSregsUpdate;
  msrs?: readonly KvmMsr[];
}

export interface MachineStop {
  reason: StopReason | 'destroyed';
  message: string;
  /** The serial output's last lines. */
  serialTail: string;
}

/** A run that ended in an error; its message ends with the serial log's tail. */
export class MachineError extends Error {
  readonly stop: MachineStop;

  constructor(stop: MachineStop) {
    const tail = lastLines(stop.serialTail, ERROR_TAIL_LINES);
    super(`${stop.message}\n--- serial log (last lines) ---\n${tail || '(empty)'}`);
    this.name = 'MachineError';
    this.stop = stop;
  }
}

interface QueueNotifier {
  fd: number;
  watcher: FdWatcherInstance;
  address: number | null;
}

export class Machine {
  readonly layout: MemoryLayout;
  readonly ram: MachineRam;
  readonly memory: GuestMemory;
  readonly pio: Bus;
  readonly mmio: Bus;
  readonly uart: Uart16550;
  readonly rtc: CmosRtc;
  readonly pci: PciHostBridge;
  readonly virtio: readonly VirtioPciDevice[];
  readonly vm: KvmVm;
  readonly vcpus: readonly KvmVcpu[];
  readonly interrupts: InterruptController;
  /** Resolves once, when the run ends (never rejects). */
  readonly stopped: Promise<MachineStop>;
  /** Exits handled in JavaScript, for tests and stats. */
  exitCount = 0;
  /** With `profileExits`: exits handled in JavaScript per "kind register" key. */
  readonly exitProfile: Map<string, number> | null;

  private readonly kvmFd: number;
  private readonly serialTail: SerialTail;
  private readonly log: (line: string) => void;
  private readonly notifiers: Map<number, QueueNotifier>[] = [];
  private stopState: MachineStop | null = null;
  private resolveStopped: (stop: MachineStop) => void = () => {};
  private started = false;
  private destroyed = false;

  /** Opens /dev/kvm and builds the machine; nothing runs until start(). */
  constructor(options: MachineOptions) {
    const vcpuCount = options.vcpus ?? 1;
    if (!(Number.isInteger(vcpuCount) && vcpuCount >= 1 && vcpuCount <= 254)) {
      throw new RangeError(`vcpus: ${vcpuCount} (1 to 254)`);
    }
    this.layout = memoryLayout(options.memoryMiB * MiB);
    this.log = options.log ?? (() => {});
    this.serialTail = new SerialTail(options.serial);
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    this.exitProfile = options.profileExits ? new Map() : null;

    this.kvmFd = kvmOpen(options.kvmPath);
    let vm: KvmVm | null = null;
    let ram: MachineRam | null = null;
    try {
      ram = new MachineRam(this.layout, { hugePages: options.hugePageRam ?? false });
      vm = createKvmVm(this.kvmFd);
      vm.setTssAddr(KVM_TSS_ADDRESS);
      vm.createIrqchip();
      vm.createPit2(true); // KVM_PIT_SPEAKER_DUMMY: port 0x61 (PIT gate 2) stays in KVM
      ram.mapInto(vm);
    } catch (error) {
      vm?.destroy();
      ram?.release();
      close(this.kvmFd);
      throw error;
    }
    this.vm = vm;
    this.ram = ram;
    this.memory = ram.memory;
    this.interrupts = new InterruptController(vm, this.log);

    this.pio = createPioBus({ log: this.log });
    this.mmio = createMmioBus({ log: this.log });
    const fastIo = options.fastIo ?? true;
    if (fastIo) {
      vm.onPostedWrites((port, size, bytes) => {
        for (let at = 0; at + size <= bytes.length; at += size) {
          this.pio.write(port, bytes.subarray(at, at + size));
        }
        this.serialTail.flush();
      });
    }
    this.uart = new Uart16550({
      transmit: (byte) => this.serialTail.push(byte),
      irq: (level) => this.interrupts.setLevel(COM1_IRQ, level),
      ...(fastIo
        ? {
            fastPath: {
              lsr: (value) => vm.answerPortReads(COM1_BASE + UART_LSR, value),
              thr: (posted) => vm.postPortWrites(COM1_BASE, posted),
              ier: (value) => {
                vm.answerPortReads(COM1_BASE + UART_IER, value);
                vm.postPortWrites(COM1_BASE + UART_IER, value !== null, UART_IER_MASK);
              },
            } satisfies UartFastPath,
          }
        : {}),
    });
    this.pio.register(COM1_BASE, UART_PORT_COUNT, this.uart, 'com1');
    new I8042({ reset: () => this.stop('reset', 'the guest reset the machine (i8042)') }).attach(
      this.pio,
    );
    this.rtc = new CmosRtc();
    this.rtc.attach(this.pio);
    new AcpiPm({
      poweroff: () => this.stop('poweroff', 'the guest powered off (ACPI S5)'),
      reset: () => this.stop('reset', 'the guest reset the machine (ACPI reset register)'),
      log: this.log,
    }).attach(this.pio);
    this.pci = new PciHostBridge({ mmio: this.mmio, log: this.log });
    this.pci.attach(this.pio);
    this.mmio.register(PCI_ECAM_START, ECAM_BUS_SIZE, this.pci.ecam, 'pci ecam');
    this.virtio = (options.devices ?? []).map((device) => this.addVirtio(device));
    if (fastIo) {
      for (let device = 0; device < PCI_MAX_DEVICES; device++) {
        const config = this.pci.configOf(device);
        if (config) vm.sharePciConfig(device, config.bytes);
      }
      vm.enablePciConfigWindow(true);
    }

    const cpuid = kvmGetSupportedCpuid(this.kvmFd);
    const vcpus: KvmVcpu[] = [];
    try {
      for (let id = 0; id < vcpuCount; id++) {
        const vcpu = vm.createVcpu(id, (exit) => this.onExit(vcpu, exit));
        vcpus.push(vcpu);
        vcpu.setCpuid(cpuidFor(cpuid, id));
      }
    } catch (error) {
      this.destroyResources();
      throw error;
    }
    this.vcpus = vcpus;
  }

  /** Sets the boot vCPU's state and starts every vCPU (the others wait for INIT/SIPI). */
  start(entry: VcpuEntry): void {
    if (this.started || this.destroyed) throw new Error('machine: already started or destroyed');
    this.started = true;
    const boot = this.vcpus[0]!;
    boot.setSregs(entry.sregs);
    boot.setRegs(entry.regs);
    if (entry.msrs && entry.msrs.length > 0) boot.setMsrs(entry.msrs);
    for (const vcpu of this.vcpus) vcpu.run();
  }

  /** The serial output's tail as text. */
  serialText(): string {
    return this.serialTail.text();
  }

  /** The run's end; rejects with a MachineError if it ended in an error. */
  async finished(): Promise<MachineStop> {
    const stop = await this.stopped;
    if (stop.reason === 'error') throw new MachineError(stop);
    return stop;
  }

  /** Ends the run (if it has not ended) and frees everything. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    this.stop('destroyed', 'the machine was destroyed');
    this.destroyed = true;
    this.destroyResources();
  }

  private destroyResources(): void {
    for (const queues of this.notifiers) {
      for (const n of queues.values()) n.watcher.stop();
    }
    this.vm.destroy();
    for (const queues of this.notifiers) {
      for (const n of queues.values()) close(n.fd);
      queues.clear();
    }
    this.interrupts.close();
    this.ram.release();
    close(this.kvmFd);
  }

  private onExit(vcpu: KvmVcpu, exit: KvmExit): void {
    if (this.stopState) return; // leave it waiting: the run is over
    this.exitCount++;
    if (this.exitProfile) {
      const key = profileKey(exit, this.mmio);
      this.exitProfile.set(key, (this.exitProfile.get(key) ?? 0) + 1);
    }
    const outcome = handleExit(exit, this, vcpu.id);
    this.serialTail.flush();
    if (outcome.kind === 'stop') {
      this.stop(outcome.reason, outcome.message);
      return;
    }
    if (this.stopState) return; // a device (ACPI, i8042) ended the run
    try {
      vcpu.complete(outcome.data);
    } catch (error) {
      this.stop('error', `vCPU ${vcpu.id}: completing an exit failed: ${(error as Error).message}`);
    }
  }

  private stop(reason: MachineStop['reason'], message: string): void {
    if (this.stopState) return;
    this.stopState = { reason, message, serialTail: '' };
    if (!this.destroyed) {
      for (const vcpu of this.vcpus ?? []) {
        try {
          if (vcpu.state === 'running') vcpu.pause();
        } catch (error) {
          this.log(`machine: pausing vCPU ${vcpu.id}: ${(error as Error).message}`);
        }
      }
    }
    this.stopState.serialTail = this.serialTail.text();
    this.log(`machine stopped: ${reason}: ${message}`);
    this.resolveStopped(this.stopState);
  }

  private addVirtio(device: VirtioDevice): VirtioPciDevice {
    let gsi = PCI_INTX_FIRST_GSI;
    const pciDevice = new VirtioPciDevice({
      device,
      memory: this.memory,
      signalMsi: (message) => this.interrupts.signalMsi(message),
      irq: (level) => this.interrupts.setLevel(gsi, level),
      log: this.log,
    });
    const number = this.pci.addDevice(pciDevice.config, device.name);
    gsi = PCI_INTX_FIRST_GSI + ((number - 1) % 8);
    pciDevice.config.bytes[PCI_INTERRUPT_LINE] = gsi;
    // The host bridge remaps BARs on a decode change; we follow it to move the kicks' ioeventfds.
    const notifiers = new Map<number, QueueNotifier>();
    this.notifiers.push(notifiers);
    const remap = pciDevice.config.onDecodeChange;
    pciDevice.config.onDecodeChange = () => {
      remap();
      this.updateNotifiers(pciDevice, notifiers);
    };
    return pciDevice;
  }

  /** Points each queue's ioeventfd at its notify address (or nowhere while the BAR is off). */
  private updateNotifiers(pciDevice: VirtioPciDevice, notifiers: Map<number, QueueNotifier>): void {
    if (this.destroyed) return;
    for (let index = 0; index < pciDevice.device.queueCount; index++) {
      const address = pciDevice.notifyAddress(index);
      let notifier = notifiers.get(index);
      if ((notifier?.address ?? null) === address) continue;
      try {
        if (notifier && notifier.address !== null) {
          this.vm.ioeventfd({
            fd: notifier.fd,
            address: notifier.address,
            length: 2,
            space: 'mmio',
            deassign: true,
          });
          notifier.address = null;
        }
        if (address === null) continue;
        if (!notifier) {
          const fd = eventfd(0);
          const watcher = new FdWatcher(fd, () => {
            if (eventfdRead(fd) !== null) pciDevice.kick(index);
          }).unref();
          notifier = { fd, watcher, address: null };
          notifiers.set(index, notifier);
        }
        this.vm.ioeventfd({ fd: notifier.fd, address, length: 2, space: 'mmio' });
        notifier.address = address;
      } catch (error) {
        // The notify write then exits to us as MMIO, which the transport handles as well.
        this.log(
          `${pciDevice.device.name}: queue ${index}: no ioeventfd: ${(error as Error).message}`,
        );
      }
    }
  }
}

/** CPUID.1:ECX: the TSC-deadline LAPIC timer (KVM emulates it), and "running on a hypervisor". */
export const CPUID_1_ECX_TSC_DEADLINE = 1 << 24;
export const CPUID_1_ECX_HYPERVISOR = 1 << 31;

/**
 * The supported CPUID with this vCPU's APIC ID in leaves 1 and 0xb/0x1f. KVM_GET_SUPPORTED_CPUID
 * leaves two bits of leaf 1 to the VMM, as QEMU and Firecracker set them: the hypervisor bit,
 * without which Linux never reads KVM's leaves 0x40000000 (no kvmclock, so no TSC rate: it falls
 * back to PIT calibration and marks the TSC unstable), and the TSC-deadline timer, the LAPIC
 * timer that needs no calibration against a PIT (hardware-reduced ACPI gives Linux none).
 */
export function cpuidFor(supported: readonly CpuidEntry[], id: number): CpuidEntry[] {
  return supported.map((entry) => {
    if (entry.function === 1) {
      return {
        ...entry,
        ebx: ((entry.ebx & 0x00ffffff) | (id << 24)) >>> 0,
        ecx: (entry.ecx | CPUID_1_ECX_TSC_DEADLINE | CPUID_1_ECX_HYPERVISOR) >>> 0,
      };
    }
    if (entry.function === 0xb || entry.function === 0x1f) return { ...entry, edx: id };
    return { ...entry };
  });
}

/** "io out com1+0", "mmio read pci ecam": which register an exit touched, for the profile. */
function profileKey(exit: KvmExit, mmio: Bus): string {
  if (exit.reason === 'io') return `io ${exit.direction} 0x${exit.port.toString(16)}`;
  if (exit.reason === 'mmio') {
    const range = mmio.find(exit.address);
    return `mmio ${exit.direction} ${range ? range.name : `0x${exit.address.toString(16)}`}`;
  }
  return exit.reason;
}

/** The profile's busiest keys, "key count, ..." */
export function formatExitProfile(profile: Map<string, number>, top = 12): string {
  return [...profile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, count]) => `${key} ${count}`)
    .join(', ');
}

function lastLines(text: string, count: number): string {
  const lines = text.split('\n');
  return lines.slice(Math.max(0, lines.length - count)).join('\n');
}

// --- the two ways to run something ---

export interface BootLinuxOptions extends Omit<MachineOptions, 'memoryMiB'> {
  /** The bzImage, or its path. */
  kernel: Uint8Array | string;
  initrd?: Uint8Array | string;
  cmdline: string;
  memoryMiB: number;
  vcpus?: number;
}

/** LAPIC LVT LINT0 as ExtINT and LINT1 as NMI, as a PC's firmware leaves them for Linux. */
const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
const APIC_MODE_EXTINT = 0x7;
const APIC_MODE_NMI = 0x4;

function setLint(vcpu: KvmVcpu): void {
  const lapic = vcpu.getLapic();
  const set = (offset: number, mode: number) => {
    const value = lapic.readUInt32LE(offset);
    lapic.writeUInt32LE(((value & ~0x700) | (mode << 8)) >>> 0, offset);
  };
  set(APIC_LVT_LINT0, APIC_MODE_EXTINT);
  set(APIC_LVT_LINT1, APIC_MODE_NMI);
  vcpu.setLapic(lapic);
}

/** Builds a machine, loads a Linux kernel by the x86 boot protocol and starts it. */
export function bootLinux(options: BootLinuxOptions): { machine: Machine; boot: LinuxBoot } {
  const bytes = (input: Uint8Array | string) =>
    typeof input === 'string' ? new Uint8Array(readFileSync(input)) : input;
  const kernel = bytes(options.kernel);
  const initrd = options.initrd === undefined ? undefined : bytes(options.initrd);
  const machine = new Machine(options);
  try {
    const boot = setupLinuxBoot({
      ram: machine.memory,
      layout: machine.layout,
      kernel,
      ...(initrd ? { initrd } : {}),
      cmdline: options.cmdline,
      vcpus: machine.vcpus.length,
      pciHostBridge: true,
      ecam: true,
    });
    for (const vcpu of machine.vcpus) setLint(vcpu);
    machine.start(boot);
    return { machine, boot };
  } catch (error) {
    machine.destroy();
    throw error;
  }
}

export interface RunProgramOptions extends Omit<MachineOptions, 'memoryMiB'> {
  /** Flat machine code, loaded at `loadAddress` and entered there. */
  code: Uint8Array;
  /** 'real': 16-bit, CS = 0. 'long': 64-bit with the boot GDT and a 4 GiB identity map. */
  mode: 'real' | 'long';
  /** Default 0x1000 (real) or 0x100000 (long). */
  loadAddress?: number;
  /** Default 16 MiB, the smallest layout. */
  memoryMiB?: number;
  /** Initial stack pointer; default 0x8000 (real) or 0x80000 (long). */
  stack?: number;
}

/** Builds a machine and runs a small freestanding program on vCPU 0 (tests, probes). */
export function runProgram(options: RunProgramOptions): Machine {
  const machine = new Machine({ ...options, memoryMiB: options.memoryMiB ?? 16 });
  try {
    const load = options.loadAddress ?? (options.mode === 'real' ? 0x1000 : 0x100000);
    const target = machine.memory.slice(load, options.code.length);
    if (!target)
      throw new RangeError(`runProgram: the code does not fit at 0x${load.toString(16)}`);
    target.set(options.code);
    if (options.mode === 'real') {
      machine.start({
        sregs: { cs: { base: 0n, selector: 0 } },
        regs: { rip: BigInt(load), rflags: 2n, rsp: BigInt(options.stack ?? 0x8000) },
      });
    } else {
      const cr3 = writeIdentityPageTables(machine.memory);
      writeBootGdt(machine.memory);
      machine.start({
        sregs: bootSregs({ cr3 }),
        regs: { rip: BigInt(load), rflags: 2n, rsp: BigInt(options.stack ?? 0x80000) },
      });
    }
    return machine;
  } catch (error) {
    machine.destroy();
    throw error;
  }
}
