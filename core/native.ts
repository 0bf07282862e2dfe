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
