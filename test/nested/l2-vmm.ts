// What the L1 runner asks of a VMM: boot the factory image once, inside L1, under real KVM.
// Two implementations: the peer (QEMU with -enable-kvm, peer-qemu-kvm.ts) and ours
// (berth-vmm.ts, not built yet). Both get the same image and a fresh data disk per run, and both
// are timed the same way: from starting the VMM process to BERTH-READY on the guest's serial.

/** The factory image as the L1 runner sees it (a copy in L1's RAM). */
export interface L2Image {
  kernel: string;
  initrd: string;
  /** The read-only system image (squashfs); the guest finds its disk by the serial berth-system. */
  systemImage: string | null;
  /** build/image/cmdline. */
  cmdline: string;
}

export interface L2Run {
  image: L2Image;
  /** A fresh, sparse, all-zero data disk: the guest formats it on first boot. */
  dataDisk: string;
  /** Where the guest's serial console is logged (inside L1). */
  serialLog: string;
  /** 1-based run number, for messages. */
  run: number;
  cpus: number;
  memoryMiB: number;
}

export interface L2Boot {
  /** From starting the VMM process to the guest's BERTH-READY line. */
  readyMs: number;
  /** From starting the VMM process to the first byte on the guest's serial console. */
  firstOutputMs: number;
  /** Bytes the guest printed on its serial console up to BERTH-READY (each one a UART exit). */
  serialBytes: number;
  /** The uptime the guest printed in its BERTH-READY line (seconds). */
  guestUptime: number;
  /** Our VMM: the exits it handled in JavaScript up to the poweroff, and the busiest ones. */
  exits?: number;
  exitProfile?: string;
  /** Our VMM: what it proved after READY (SSH over vsock, the data disk), in words. */
  check?: string;
  /** Our VMM process's memory at READY and after the checks. */
  memoryAtReady?: VmmMemory;
  memoryAfterCheck?: VmmMemory;
}

/** A VMM process's memory, in KiB. */
export interface VmmMemory {
  /** Everything resident. */
  rssKiB: number;
  /** Guest RAM the guest has touched (the VMM's guest RAM mappings, resident). */
  guestKiB: number;
  /** The rest: the VMM's own heap, stacks, node and the addon. */
  ownKiB: number;
}

export interface NestedVmm {
  name: 'berth' | 'qemu-kvm';
  /**
   * Boots once to BERTH-READY, does whatever this VMM's run must prove (berth: a shell command
   * over vsock and SSH, a write and read-back on the data disk), powers the guest off and resolves
   * with the READY time. Rejects (a VmError, with the serial tail) on any failure or deadline.
   */
  boot(run: L2Run): Promise<L2Boot>;
}

/** Deadlines inside L1 (KVM, so far shorter than the host's TCG ones; still generous). */
export const L2_READY_DEADLINE_MS = 60_000;
export const L2_POWEROFF_DEADLINE_MS = 30_000;
