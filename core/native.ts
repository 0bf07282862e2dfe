// The one module that loads Berth's native addon (native/kvm, built into
// native/kvm/build/Release/berth_native.node by `npm run setup`) and gives it types.
// It loads on first use, so importing this module never fails; a missing addon fails the first
// call with an error that says to run setup. native/kvm/README.md describes each call.
//
// Every fd the addon returns is close-on-exec, and every socket and eventfd is nonblocking.
// Argument mistakes throw a TypeError or RangeError naming the argument (code
// ERR_INVALID_ARG_TYPE or ERR_OUT_OF_RANGE); failed system calls throw a SystemCallError.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { markAsUntransferable } from 'node:worker_threads';
import { projectRoot } from './paths.ts';

/** Where setup builds the addon. */
export const addonPath = join(projectRoot, 'native/kvm/build/Release/berth_native.node');

/** A failed system call, shaped like Node's own: message "mmap: EBADF (Bad file descriptor)". */
export interface SystemCallError extends Error {
  /** The errno name ('EBADF'), or an ERR_* code for failures without an errno. */
  code: string;
  /** The positive errno value (9); absent for ERR_* codes. */
  errno?: number;
  /** The call that failed ('mmap'). */
  syscall: string;
}

/** A MAP_SHARED mapping of a file, from mmap(). */
export interface MappedRegion {
  /**
   * The mapped memory itself (an external ArrayBuffer). After unmap() it is detached: byteLength
   * 0, and every view on it reads as empty. Marked untransferable: it cannot be posted to a worker.
   * A read-only region's buffer must never be written: the write is a segmentation fault.
   */
  readonly buffer: ArrayBuffer;
  /** The mapping's length in bytes (still the original length after unmap()). */
  readonly length: number;
  /** Its start address in this process (to find it in /proc/self/maps). */
  readonly address: number;
  readonly writable: boolean;
  /** False once unmap() has run. */
  readonly mapped: boolean;
  /** Detaches buffer, then munmaps. A second call does nothing. Without it, GC munmaps. */
  unmap(): void;
}

/** Calls onReadable from the event loop while fd is readable (level-triggered: drain the fd). */
export interface FdWatcher {
  readonly fd: number;
  /** False once stopped (by stop(), or by a polling error). */
  readonly active: boolean;
  /** Stops watching at once: the fd may be closed right after. A second call does nothing. */
  stop(): void;
  /** Keeps the event loop alive while active (the default). */
  ref(): this;
  /** Lets the process exit even though this watcher is active. */
  unref(): this;
}

export interface FdWatcherConstructor {
  /**
   * Starts watching fd (made nonblocking). onReadable gets an Error only when polling itself
   * failed, and then the watcher has stopped. One watcher per fd; stop() before closing the fd.
   */
  new (fd: number, onReadable: (error?: SystemCallError) => void): FdWatcher;
}

/** One recvWithFds() result: data of length 0 means the peer closed the connection. */
export interface ReceivedMessage {
  data: Buffer;
  fds: number[];
}

export type FallocateMode = 'punch-hole' | 'zero-range';

/** One CPUID leaf (kvm_cpuid_entry2); index and flags default to 0 when set. */
export interface CpuidEntry {
  function: number;
  index?: number;
  flags?: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** kvm_regs. Setting merges: a register left out keeps its value. */
export interface KvmRegs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

/** kvm_segment (flags are 0 or 1; type 0 to 15). */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface KvmDtable {
  base: bigint;
  limit: number;
}

/** kvm_sregs without the interrupt bitmap (setting keeps the kernel's). */
export interface KvmSregs {
  cs: KvmSegment;
  ds: KvmSegment;
  es: KvmSegment;
  fs: KvmSegment;
  gs: KvmSegment;
  ss: KvmSegment;
  tr: KvmSegment;
  ldt: KvmSegment;
  gdt: KvmDtable;
  idt: KvmDtable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

/** What setSregs takes: any subset, segments and tables field by field. */
export type KvmSregsUpdate = Partial<
  Omit<KvmSregs, 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt' | 'gdt' | 'idt'>
> & {
  [K in 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt']?: Partial<KvmSegment>;
} & { gdt?: Partial<KvmDtable>; idt?: Partial<KvmDtable> };

/** kvm_fpu: fpr is 8 x 16 bytes, xmm 16 x 16 bytes. */
export interface KvmFpu {
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  xmm: Uint8Array;
  mxcsr: number;
}

export interface KvmMsr {
  index: number;
  value: bigint;
}

/** An exit the kernel does not finish: handed to onExit, finished by vcpu.complete(). */
export type KvmExit =
  | {
      reason: 'io';
      exitReason: number;
      direction: 'in' | 'out';
      port: number;
      /** Bytes per access: 1, 2 or 4. */
      size: number;
      /** Accesses (more than 1 for rep ins/outs). */
      count: number;
      /** For 'out': size * count bytes. For 'in', complete() supplies them. */
      data?: Buffer;
    }
  | {
      reason: 'mmio';
      exitReason: number;
      direction: 'read' | 'write';
      address: number;
      size: number;
      /** For 'write': size bytes. For 'read', complete() supplies them. */
      data?: Buffer;
    }
  | { reason: 'hlt' | 'shutdown' | 'unknown'; exitReason: number }
  | { reason: 'system-event'; exitReason: number; type: number; data: bigint[] }
  | { reason: 'internal-error'; exitReason: number; suberror: number; data: bigint[] }
  | {
      reason: 'fail-entry';
      exitReason: number;
      hardwareEntryFailureReason: bigint;
      cpu: number;
    }
  /** KVM_RUN itself failed; the thread has ended: destroy() the vCPU. */
  | { reason: 'error'; error: SystemCallError };

export type KvmVcpuState =
  'idle' | 'running' | 'pausing' | 'waiting' | 'paused' | 'stopped' | 'destroyed';

/**
 * A vCPU and its native thread (see native/kvm/README.md). The state calls (registers, MSRs,
 * CPUID, LAPIC) need the thread out of KVM_RUN: before run(), while paused, or while an exit
 * waits for complete(); otherwise they throw ERR_VCPU_RUNNING.
 */
export interface KvmVcpu {
  readonly fd: number;
  readonly id: number;
  readonly state: KvmVcpuState;
  readonly destroyed: boolean;
  /** Starts the thread (once); it keeps the event loop alive until paused or destroyed. */
  run(): void;
  /** Returns once the thread is out of KVM_RUN (paused, or waiting for complete()). */
  pause(): void;
  resume(): void;
  /** Finishes the waiting exit; data (a Uint8Array) is required for 'in' and MMIO 'read'. */
  complete(data?: Uint8Array): void;
  /** Stops and joins the thread, closes the fd, unmaps kvm_run. A second call does nothing. */
  destroy(): void;
  getRegs(): KvmRegs;
  setRegs(regs: Partial<KvmRegs>): void;
  getSregs(): KvmSregs;
  setSregs(sregs: KvmSregsUpdate): void;
  getFpu(): KvmFpu;
  setFpu(fpu: Partial<KvmFpu>): void;
  getMsrs(indices: readonly number[]): KvmMsr[];
  setMsrs(entries: readonly KvmMsr[]): void;
  /** The 1024-byte local APIC page (needs createIrqchip()). */
  getLapic(): Buffer;
  setLapic(lapic: Uint8Array): void;
  setCpuid(entries: readonly CpuidEntry[]): void;
}

export interface KvmMemoryRegion {
  slot: number;
  guestPhysAddr: number | bigint;
  /** Pinned while in the slot: its unmap() throws ERR_REGION_IN_USE. */
  region: MappedRegion;
  /** Into the region, page-aligned; default 0. */
  offset?: number;
  /** Default: the rest of the region. */
  size?: number;
  readonly?: boolean;
  logDirty?: boolean;
}

export interface KvmIoeventfd {
  fd: number;
  address: number | bigint;
  /** 0 (any width, the default), 1, 2, 4 or 8 bytes. */
  length?: number;
  space: 'pio' | 'mmio';
  datamatch?: number | bigint;
  deassign?: boolean;
}

export interface KvmIrqfd {
  fd: number;
  gsi: number;
  resampleFd?: number;
  deassign?: boolean;
}

export type KvmGsiRoute =
  | { gsi: number; type: 'irqchip'; irqchip: number; pin: number }
  | { gsi: number; type: 'msi'; addressLo: number; addressHi?: number; data: number };

export interface KvmMsi {
  addressLo: number;
  addressHi?: number;
  data: number;
}

/** A KVM VM. destroy() destroys its vCPUs, closes its fd and unpins its memory regions. */
export interface KvmVm {
  readonly fd: number;
  readonly destroyed: boolean;
  setUserMemoryRegion(region: KvmMemoryRegion): void;
  removeUserMemoryRegion(slot: number): void;
  setTssAddr(address: number): void;
  setIdentityMapAddr(address: number): void;
  createIrqchip(): void;
  createPit2(speakerDummy?: boolean): void;
  ioeventfd(options: KvmIoeventfd): void;
  irqfd(options: KvmIrqfd): void;
  /** Replaces the whole GSI routing table. */
  setGsiRouting(routes: readonly KvmGsiRoute[]): void;
  /** > 0 delivered, 0 blocked by the guest. */
  signalMsi(msi: KvmMsi): number;
  irqLine(irq: number, level: boolean): void;
  /**
   * The vCPU threads' own port handling (native/kvm/src/fast_io.h), for registers polled
   * thousands of times: 1-byte reads of `port` return `value` without an exit (null: exit again).
   */
  answerPortReads(port: number, value: number | null): void;
  /**
   * Writes to `port` are queued for onPostedWrites's callback instead of stopping the vCPU. With
   * `readbackMask` the port is a latch: a posted byte, masked, also answers its 1-byte reads.
   */
  postPortWrites(port: number, on: boolean, readbackMask?: number): void;
  /**
   * Where posted writes go, in order, on the event loop: `bytes` holds bytes.length / size writes.
   * Every exit delivered to onExit drains the queue first.
   */
  onPostedWrites(callback: (port: number, size: number, bytes: Uint8Array) => void): void;
  /** Bus 0 device's configuration space, read by the vCPU threads while the window is on. */
  sharePciConfig(device: number, bytes: Uint8Array | null): void;
  /** 0xCF8 writes latched (and posted), 0xCFC-0xCFF reads answered from the shared spaces. */
  enablePciConfigWindow(on: boolean): void;
  /** Accesses finished on the vCPU threads since creation. */
  fastIoCounts(): { answeredReads: number; postedWrites: number };
  /** onExit runs on the event loop for each exit; call vcpu.complete() to go on. */
  createVcpu(id: number, onExit: (this: KvmVcpu, exit: KvmExit) => void): KvmVcpu;
  destroy(): void;
}

export interface KvmVmConstructor {
  /** KVM_CREATE_VM on an fd from kvmOpen() (which stays the caller's). */
  new (kvmFd: number): KvmVm;
}

/** KVM_CAP_* numbers (linux/kvm.h) that Berth asks for. */
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  PIT: 11,
  MP_STATE: 14,
  IRQ_ROUTING: 25,
  IRQ_INJECT_STATUS: 26,
  SET_IDENTITY_MAP_ADDR: 37,
  IOEVENTFD: 36,
  PIT2: 33,
  IRQFD: 32,
  SIGNAL_MSI: 77,
  READONLY_MEM: 81,
  IMMEDIATE_EXIT: 136,
} as const;

/** The addon's exports, exactly as the C++ code defines them. */
export interface NativeAddon {
  /** memfd_create (MFD_CLOEXEC | MFD_ALLOW_SEALING) and ftruncate to size. name: ≤ 249 bytes. */
  memfdCreate(name: string, size: number): number;
  /**
   * mmap(MAP_SHARED) of length bytes of fd from offset (a multiple of the page size). One
   * mapping is at most buffer.constants.MAX_LENGTH bytes (4 GiB on Node 20): map larger files
   * in windows. Longer throws a RangeError.
   */
  mmap(fd: number, offset: number, length: number, writable: boolean): MappedRegion;
  mmapAnonymous(length: number, name: string, hugePages?: boolean): MappedRegion;
  /** eventfd (EFD_NONBLOCK | EFD_CLOEXEC, and EFD_SEMAPHORE if asked); initval < 2^32. */
  eventfd(initval: number, semaphore?: boolean): number;
  /** The counter (then reset; 1 in semaphore mode), or null when it is zero. Exact to 2^53. */
  eventfdRead(fd: number): number | null;
  /** Adds value (default 1, at least 1); throws EAGAIN if the counter would overflow. */
  eventfdWrite(fd: number, value?: number): void;
  FdWatcher: FdWatcherConstructor;
  /** socket + bind + listen on a path (≤ 107 bytes), created with mode 0600. */
  unixListen(path: string, backlog: number): number;
  /** accept4 (nonblocking, close-on-exec); null when no connection is waiting. */
  unixAccept(listenFd: number): number | null;
  /** A blocking connect; the returned socket is then nonblocking. */
  unixConnect(path: string): number;
  /** A connected pair of nonblocking Unix stream sockets. */
  socketPair(): [number, number];
  /**
   * recvmsg of up to maxBytes (≤ 64 MiB) and maxFds (≤ 253) fds; null when nothing is waiting.
   * More fds than maxFds closes those that came and throws code ERR_FDS_TRUNCATED.
   */
  recvWithFds(fd: number, maxBytes: number, maxFds: number): ReceivedMessage | null;
  /**
   * sendmsg of data (not empty) with fds (≤ 253) on its first byte; returns the bytes sent, which
   * may be fewer than data.length. A full socket throws code EAGAIN (nothing was sent).
   */
  sendWithFds(fd: number, data: Uint8Array, fds: readonly number[]): number;
  /** FALLOC_FL_PUNCH_HOLE or FALLOC_FL_ZERO_RANGE, both with FALLOC_FL_KEEP_SIZE. */
  fallocate(fd: number, mode: FallocateMode, offset: number, length: number): void;
  close(fd: number): void;
  /** open(path, O_RDWR | O_CLOEXEC); path defaults to /dev/kvm. */
  kvmOpen(path?: string): number;
  kvmGetApiVersion(kvmFd: number): number;
  /** KVM_CHECK_EXTENSION on the kvm fd or a VM's fd: 0 when absent, else a cap-specific value. */
  kvmCheckExtension(fd: number, capability: number): number;
  kvmGetVcpuMmapSize(kvmFd: number): number;
  kvmGetSupportedCpuid(kvmFd: number): CpuidEntry[];
  KvmVm: KvmVmConstructor;
}

let addon: NativeAddon | undefined;

/**
 * Loads the addon (once) and returns it, its mmap marking each buffer untransferable. Throws a
 * clear error if it is not built: call it at startup to fail early.
 */
export function loadNative(): NativeAddon {
  if (addon) return addon;
  const shown = relative(process.cwd(), addonPath) || addonPath;
  if (!existsSync(addonPath)) {
    throw new Error(
      `Berth's native addon is not built (${shown} is missing): run \`npm run setup\`, which builds native/kvm.`,
    );
  }
  let raw: NativeAddon;
  try {
    raw = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Berth's native addon (${shown}) could not be loaded: ${why}. Run \`npm run setup\` to rebuild it.`,
      { cause: error },
    );
  }
  addon = {
    ...raw,
    mmap(fd, offset, length, writable) {
      const region = raw.mmap(fd, offset, length, writable);
      // A buffer transferred to a worker would outlive unmap() there.
      markAsUntransferable(region.buffer);
      return region;
    },
  };
  return addon;
}

/** Whether error is a SystemCallError, optionally with the given code. */
export function isSystemCallError(error: unknown, code?: string): error is SystemCallError {
  return (
    error instanceof Error &&
    typeof (error as Partial<SystemCallError>).code === 'string' &&
    typeof (error as Partial<SystemCallError>).syscall === 'string' &&
    (code === undefined || (error as SystemCallError).code === code)
  );
}

export function memfdCreate(name: string, size: number): number {
  return loadNative().memfdCreate(name, size);
}

export function mmap(fd: number, offset: number, length: number, writable: boolean): MappedRegion {
  return loadNative().mmap(fd, offset, length, writable);
}

/**
 * Private anonymous memory named `name` in /proc/self/maps, advised for transparent huge pages
 * (guest RAM that no other process maps: see native/kvm/src/memory.cc).
 */
export function mmapAnonymous(length: number, name: string, hugePages = true): MappedRegion {
  return loadNative().mmapAnonymous(length, name, hugePages);
}

export function eventfd(initval: number, semaphore?: boolean): number {
  return loadNative().eventfd(initval, semaphore);
}

export function eventfdRead(fd: number): number | null {
  return loadNative().eventfdRead(fd);
}

export function eventfdWrite(fd: number, value?: number): void {
  loadNative().eventfdWrite(fd, value);
}

/** Loads the addon on first use, like the functions. */
export const FdWatcher: FdWatcherConstructor = new Proxy(
  class FdWatcher {} as unknown as FdWatcherConstructor,
  {
    construct: (_target, args: ConstructorParameters<FdWatcherConstructor>) =>
      new (loadNative().FdWatcher)(...args),
    get: (target, key, receiver) =>
      key === Symbol.hasInstance
        ? (value: unknown) => value instanceof loadNative().FdWatcher
        : Reflect.get(target, key, receiver),
  },
);

export function unixListen(path: string, backlog: number): number {
  return loadNative().unixListen(path, backlog);
}

export function unixAccept(listenFd: number): number | null {
  return loadNative().unixAccept(listenFd);
}

export function unixConnect(path: string): number {
  return loadNative().unixConnect(path);
}

export function socketPair(): [number, number] {
  return loadNative().socketPair();
}

export function recvWithFds(fd: number, maxBytes: number, maxFds: number): ReceivedMessage | null {
  return loadNative().recvWithFds(fd, maxBytes, maxFds);
}

export function sendWithFds(fd: number, data: Uint8Array, fds: readonly number[]): number {
  return loadNative().sendWithFds(fd, data, fds);
}

export function fallocate(fd: number, mode: FallocateMode, offset: number, length: number): void {
  loadNative().fallocate(fd, mode, offset, length);
}

export function close(fd: number): void {
  loadNative().close(fd);
}

export function kvmOpen(path?: string): number {
  return loadNative().kvmOpen(path);
}

export function kvmGetApiVersion(kvmFd: number): number {
  return loadNative().kvmGetApiVersion(kvmFd);
}

export function kvmCheckExtension(fd: number, capability: number): number {
  return loadNative().kvmCheckExtension(fd, capability);
}

export function kvmGetVcpuMmapSize(kvmFd: number): number {
  return loadNative().kvmGetVcpuMmapSize(kvmFd);
}

export function kvmGetSupportedCpuid(kvmFd: number): CpuidEntry[] {
  return loadNative().kvmGetSupportedCpuid(kvmFd);
}

/** A new KVM VM on kvmFd (see KvmVm). */
export function createKvmVm(kvmFd: number): KvmVm {
  return new (loadNative().KvmVm)(kvmFd);
}
