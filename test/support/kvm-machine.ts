// A tiny real-mode machine on the host's /dev/kvm for the native addon's tests: 64 KiB of guest
// memory (a memfd) at guest address 0, code loaded at 0x1000, one vCPU starting there with
// CS = 0. Guest addresses from 0x10000 up are unmapped, so accesses there are MMIO exits.
//
// Exits are recorded; answer(exit) supplies the bytes of reads (I/O "in", MMIO "read"), and the
// first exit that is not I/O or MMIO (HLT, shutdown, an error...) ends the run: finished
// resolves with it and the vCPU is left waiting. /dev/kvm here may be PVM (an instruction
// emulator, ~375 ns per instruction): keep programs short and put deadlines on tests.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import {
  close,
  createKvmVm,
  kvmOpen,
  memfdCreate,
  mmap,
  type KvmExit,
  type KvmVcpu,
  type KvmVm,
  type MappedRegion,
} from '../../core/native.ts';

export const MEMORY_SIZE = 0x10000;
export const CODE_ADDRESS = 0x1000;

/** Why the KVM tests cannot run here, or null when they can. */
export function kvmUnavailable(): string | null {
  if (!existsSync('/dev/kvm')) return '/dev/kvm is absent: skipping the KVM tests';
  try {
    close(kvmOpen());
    return null;
  } catch (error) {
    return `/dev/kvm cannot be opened (${(error as Error).message}): skipping the KVM tests`;
  }
}

export interface MachineOptions {
  /** Create the in-kernel irqchip (then HLT no longer exits to user space). */
  irqchip?: boolean;
  /** The bytes a read returns; default zeros. */
  answer?: (exit: KvmExit) => Uint8Array | undefined;
}

export interface RealModeMachine {
  kvmFd: number;
  memfd: number;
  memory: MappedRegion;
  vm: KvmVm;
  vcpu: KvmVcpu;
  /** Every exit so far, in order. */
  exits: KvmExit[];
  /** The first exit that is not I/O or MMIO. */
  finished: Promise<KvmExit>;
  /** Destroys the VM, unmaps the memory, closes the fds. */
  destroy(): void;
}

function readLength(exit: KvmExit): number {
  if (exit.reason === 'io' && exit.direction === 'in') return exit.size * exit.count;
  if (exit.reason === 'mmio' && exit.direction === 'read') return exit.size;
  return 0;
}

export function realModeMachine(
  code: readonly number[],
  options: MachineOptions = {},
): RealModeMachine {
  const kvmFd = kvmOpen();
  const memfd = memfdCreate('berth-test-guest', MEMORY_SIZE);
  const memory = mmap(memfd, 0, MEMORY_SIZE, true);
  new Uint8Array(memory.buffer).set(code, CODE_ADDRESS);
  const vm = createKvmVm(kvmFd);
  vm.setTssAddr(0xfffbd000);
  if (options.irqchip) vm.createIrqchip();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, region: memory });
  const exits: KvmExit[] = [];
  let finish: (exit: KvmExit) => void = () => {};
  const finished = new Promise<KvmExit>((resolve) => (finish = resolve));
  const vcpu = vm.createVcpu(0, function (exit) {
    exits.push(exit);
    if (exit.reason !== 'io' && exit.reason !== 'mmio') {
      finish(exit);
      return;
    }
    const length = readLength(exit);
    if (length === 0) {
      this.complete();
      return;
    }
    const data = options.answer?.(exit) ?? new Uint8Array(length);
    this.complete(data);
  });
  vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
  vcpu.setRegs({ rip: BigInt(CODE_ADDRESS), rflags: 2n, rsp: 0x8000n });
  return {
    kvmFd,
    memfd,
    memory,
    vm,
    vcpu,
    exits,
    finished,
    destroy() {
      vm.destroy();
      memory.unmap();
      close(memfd);
      close(kvmFd);
    },
  };
}

/** Rejects after ms with what was seen, so a hung guest fails the test instead of hanging it. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms passed: ${what()}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * What a VM may leave behind in this process: open fds, threads, and mappings whose line in
 * /proc/self/maps contains `mappingMark` (guest RAM is "berth-guest-ram"; KVM's own are "kvm").
 */
export function processResources(mappingMark: string) {
  const maps = readFileSync('/proc/self/maps', 'utf8');
  return {
    fds: readdirSync('/proc/self/fd').length,
    threads: readdirSync('/proc/self/task').length,
    mappings: maps.split('\n').filter((line) => line.includes(mappingMark)).length,
  };
}

/** How many of the machine's guest RAM windows are still mapped in this process. */
export function guestRamMapped(ram: { windows: readonly { region: { address: number } }[] }) {
  const starts = new Set(
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((line) => Number.parseInt(line.split('-')[0]!, 16)),
  );
  return ram.windows.filter((w) => starts.has(w.region.address)).length;
}
