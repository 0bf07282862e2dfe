// The backing store of a virtio-blk device: a sparse raw file, opened once. Reads and writes go
// straight between the file and guest memory views (pread/preadv and pwrite/pwritev on the views
// themselves, no intermediate buffer); discard and write-zeroes become fallocate. The system calls
// come from a DiskFileOps object, so a test can count or fail any of them.
//
// Every method throws on failure (a SystemCallError from node:fs or the addon); the device turns
// that into an IOERR status for the one request and carries on.
import * as fs from 'node:fs';
import { fallocate, isSystemCallError, type FallocateMode } from '../../native.ts';

/** The system calls a DiskFile makes; nodeDiskFileOps is the real thing. */
export interface DiskFileOps {
  /** Open for reading and writing, or reading only; close-on-exec. */
  open(path: string, readOnly: boolean): number;
  /** The size in bytes of the open file; throws if it is not a regular file. */
  size(fd: number): number;
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  readv(fd: number, buffers: readonly Uint8Array[], position: number): number;
  write(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  writev(fd: number, buffers: readonly Uint8Array[], position: number): number;
  fdatasync(fd: number): void;
  fallocate(fd: number, mode: FallocateMode, offset: number, length: number): void;
  close(fd: number): void;
}

export const nodeDiskFileOps: DiskFileOps = {
  // libuv opens every file O_CLOEXEC.
  open: (path, readOnly) => fs.openSync(path, readOnly ? 'r' : 'r+'),
  size: (fd) => {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a regular file');
    return stat.size;
  },
  read: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  readv: (fd, buffers, position) => fs.readvSync(fd, buffers, position),
  write: (fd, buffer, offset, length, position) =>
    fs.writeSync(fd, buffer, offset, length, position),
  writev: (fd, buffers, position) => fs.writevSync(fd, buffers, position),
  fdatasync: (fd) => fs.fdatasyncSync(fd),
  fallocate: (fd, mode, offset, length) => fallocate(fd, mode, offset, length),
  close: (fd) => fs.closeSync(fd),
};

export interface DiskFileOptions {
  readOnly?: boolean;
  ops?: DiskFileOps;
}

/** Zeros for write-zeroes on a file system without fallocate zero-range; shared, never written. */
let zeroChunk: Uint8Array | null = null;
const ZERO_CHUNK_SIZE = 1 << 20;

function notSupported(error: unknown): boolean {
  return isSystemCallError(error, 'EOPNOTSUPP') || isSystemCallError(error, 'ENOTSUP');
}

export class DiskFile {
  readonly path: string;
  readonly readOnly: boolean;
  /** The file size when it was opened; the device's capacity is this divided by 512. */
  readonly sizeBytes: number;
  private readonly ops: DiskFileOps;
  /** -1 once closed: a closed fd number may already belong to another file. */
  private fd: number;
  /** Cleared after fallocate says EOPNOTSUPP, so it is not asked again. */
  private canPunchHole = true;
  private canZeroRange = true;

  /** Opens `path` (a regular file); throws if it cannot. */
  constructor(path: string, options: DiskFileOptions = {}) {
    this.path = path;
    this.readOnly = options.readOnly === true;
    this.ops = options.ops ?? nodeDiskFileOps;
    const fd = this.ops.open(path, this.readOnly);
    try {
      this.sizeBytes = this.ops.size(fd);
    } catch (error) {
      this.ops.close(fd);
      throw new Error(`virtio-blk: ${path}: ${(error as Error).message}`, { cause: error });
    }
    this.fd = fd;
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /**
   * Fill `buffers` (`total` bytes together) from the file at `position`. Bytes past the end of
   * the file read as zeros, as the unwritten tail of a sparse file would.
   */
  read(buffers: readonly Uint8Array[], total: number, position: number): void {
    if (total === 0) return;
    const fd = this.openFd();
    const first = buffers[0]!;
    const done =
      buffers.length === 1
        ? this.ops.read(fd, first, 0, first.length, position)
        : this.ops.readv(fd, buffers, position);
    if (done !== total) this.finishRead(fd, buffers, position, done);
  }

  /** Write `buffers` (`total` bytes together) to the file at `position`. */
  write(buffers: readonly Uint8Array[], total: number, position: number): void {
    if (total === 0) return;
    const fd = this.writableFd();
    const first = buffers[0]!;
    const done =
      buffers.length === 1
        ? this.ops.write(fd, first, 0, first.length, position)
        : this.ops.writev(fd, buffers, position);
    if (done !== total) this.finishWrite(fd, buffers, position, done);
  }

  /** Make every completed write stable (fdatasync). */
  flush(): void {
    this.ops.fdatasync(this.openFd());
  }

  /** Deallocate a byte range, which then reads as zeros. A no-op where holes are unsupported. */
  discard(offset: number, length: number): void {
    const fd = this.writableFd();
    if (length === 0 || !this.canPunchHole) return;
    try {
      this.ops.fallocate(fd, 'punch-hole', offset, length);
    } catch (error) {
      if (!notSupported(error)) throw error;
      this.canPunchHole = false;
    }
  }

  /**
   * Make a byte range read as zeros: with `unmap` by punching a hole, else with zero-range (the
   * blocks stay allocated). Falls back to zero-range, then to writing zeros, where the file system
   * lacks the faster way. The file size never changes.
   */
  writeZeroes(offset: number, length: number, unmap: boolean): void {
    const fd = this.writableFd();
    if (length === 0) return;
    if (unmap && this.canPunchHole) {
      try {
        this.ops.fallocate(fd, 'punch-hole', offset, length);
        return;
      } catch (error) {
        if (!notSupported(error)) throw error;
        this.canPunchHole = false;
      }
    }
    if (this.canZeroRange) {
      try {
        this.ops.fallocate(fd, 'zero-range', offset, length);
        return;
      } catch (error) {
        if (!notSupported(error)) throw error;
        this.canZeroRange = false;
      }
    }
    zeroChunk ??= new Uint8Array(ZERO_CHUNK_SIZE);
    for (let done = 0; done < length;) {
      const step = Math.min(length - done, ZERO_CHUNK_SIZE);
      this.write([zeroChunk.subarray(0, step)], step, offset + done);
      done += step;
    }
  }

  /** Close the file; every later call throws. A second close does nothing. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.ops.close(fd);
  }

  private openFd(): number {
    if (this.fd < 0) throw new Error(`virtio-blk: ${this.path} is closed`);
    return this.fd;
  }

  private writableFd(): number {
    if (this.readOnly) throw new Error(`virtio-blk: ${this.path} is read-only`);
    return this.openFd();
  }

  /**
   * After a short read (end of file, or preadv stopping at IOV_MAX buffers): read the rest buffer
   * by buffer, and zero-fill from the end of the file on.
   */
  private finishRead(
    fd: number,
    buffers: readonly Uint8Array[],
    position: number,
    done: number,
  ): void {
    let skip = done;
    let at = position + done;
    let eof = false;
    for (const buffer of buffers) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      let offset = skip;
      skip = 0;
      while (!eof && offset < buffer.length) {
        const n = this.ops.read(fd, buffer, offset, buffer.length - offset, at);
        if (n === 0) eof = true;
        offset += n;
        at += n;
      }
      if (eof) buffer.fill(0, offset);
    }
  }

  /** After a short write: write the rest buffer by buffer; no progress at all is an error. */
  private finishWrite(
    fd: number,
    buffers: readonly Uint8Array[],
    position: number,
    done: number,
  ): void {
    let skip = done;
    let at = position + done;
    for (const buffer of buffers) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      let offset = skip;
      skip = 0;
      while (offset < buffer.length) {
        const n = this.ops.write(fd, buffer, offset, buffer.length - offset, at);
        if (n <= 0) throw new Error(`virtio-blk: ${this.path}: short write at byte ${at}`);
        offset += n;
        at += n;
      }
    }
  }
}
