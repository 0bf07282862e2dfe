// Sequential access to a chain's buffers as one byte stream: ChainReader over the device-readable
// buffers, ChainWriter over the device-writable ones. The driver chooses how a request is split
// into buffers (2.7.4: the device must not assume any framing), so a header may straddle two
// buffers and the stream may be shorter than the device expects. Neither class throws on a short
// chain: reads return null (or a short count) and writes return false (or a short count),
// consuming nothing on an all-or-nothing failure, so the device can answer with an error status.
//
// Integers are little-endian, as every virtio structure is. A reader copies what it reads: the
// guest can change its buffers at any moment, so a header is read once and then trusted as a copy.
import type { DescriptorChain } from './descriptor-chain.ts';

const EMPTY = new Uint8Array(0);
const TWO_POW_32 = 0x1_0000_0000;

type Buffers = DescriptorChain | readonly Uint8Array[];

/** A position in a list of buffers; zero-length buffers are skipped. */
abstract class ChainCursor {
  protected readonly buffers: readonly Uint8Array[];
  protected index = 0;
  protected current: Uint8Array;
  protected pos = 0;
  protected left: number;
  private readonly total: number;

  protected constructor(buffers: readonly Uint8Array[]) {
    this.buffers = buffers;
    let total = 0;
    for (const b of buffers) total += b.length;
    this.total = total;
    this.left = total;
    this.current = buffers[0] ?? EMPTY;
    this.settle();
  }

  /** Bytes not yet read (or written). */
  get remaining(): number {
    return this.left;
  }

  /** Total size of the buffers. */
  get length(): number {
    return this.total;
  }

  /** Move past `n` bytes without touching them; false (and no move) if fewer remain. */
  skip(n: number): boolean {
    if (!(n >= 0 && n <= this.left && Number.isInteger(n))) return false;
    let todo = n;
    while (todo > 0) {
      const step = Math.min(todo, this.current.length - this.pos);
      this.pos += step;
      todo -= step;
      this.left -= step;
      this.settle();
    }
    return true;
  }

  /** After consuming: if the current buffer is used up, move to the next non-empty one. */
  protected settle(): void {
    while (this.pos >= this.current.length && this.index + 1 < this.buffers.length) {
      this.index++;
      this.current = this.buffers[this.index]!;
      this.pos = 0;
    }
  }

  /** Copy between the stream and `bytes` (direction given by the subclass), up to the end. */
  protected transfer(bytes: Uint8Array, toStream: boolean): number {
    const n = Math.min(bytes.length, this.left);
    let done = 0;
    while (done < n) {
      const step = Math.min(n - done, this.current.length - this.pos);
      if (toStream) this.current.set(bytes.subarray(done, done + step), this.pos);
      else bytes.set(this.current.subarray(this.pos, this.pos + step), done);
      this.pos += step;
      done += step;
      this.left -= step;
      this.settle();
    }
    return n;
  }
}

function buffersOf(source: Buffers, writable: boolean): readonly Uint8Array[] {
  if (Array.isArray(source)) return source as readonly Uint8Array[];
  const chain = source as DescriptorChain;
  return writable ? chain.writable : chain.readable;
}

/** Reads a chain's device-readable buffers (or any list of buffers) as one stream. */
export class ChainReader extends ChainCursor {
  constructor(source: Buffers) {
    super(buffersOf(source, false));
  }

  /** Bytes read so far. */
  get consumed(): number {
    return this.length - this.left;
  }

  /** Copy up to dest.length bytes into `dest`; returns how many (short at the end). */
  readInto(dest: Uint8Array): number {
    return this.transfer(dest, false);
  }

  /** The next `n` bytes as a copy, or null (reading nothing) if fewer remain. */
  read(n: number): Uint8Array | null {
    if (!(n >= 0 && n <= this.left && Number.isInteger(n))) return null;
    const out = new Uint8Array(n);
    this.transfer(out, false);
    return out;
  }

  readU8(): number | null {
    if (this.left < 1) return null;
    const v = this.current[this.pos++]!;
    this.left--;
    this.settle();
    return v;
  }

  readU16(): number | null {
    if (this.left < 2) return null;
    const b = this.current;
    const p = this.pos;
    if (p + 2 > b.length) return this.readU8()! | (this.readU8()! << 8);
    this.pos = p + 2;
    this.left -= 2;
    this.settle();
    return b[p]! | (b[p + 1]! << 8);
  }

  readU32(): number | null {
    if (this.left < 4) return null;
    const b = this.current;
    const p = this.pos;
    if (p + 4 > b.length) {
      return (
        (this.readU8()! |
          (this.readU8()! << 8) |
          (this.readU8()! << 16) |
          (this.readU8()! << 24)) >>>
        0
      );
    }
    this.pos = p + 4;
    this.left -= 4;
    this.settle();
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /**
   * A u64 as a number, or null if fewer than 8 bytes remain. Exact below 2^53; a larger value
   * comes back rounded but never below 2^53, so range checks against any real size (a disk's
   * capacity in sectors, say) still reject it. Use readU64BigInt for the exact value.
   */
  readU64(): number | null {
    if (this.left < 8) return null;
    const low = this.readU32()!;
    return this.readU32()! * TWO_POW_32 + low;
  }

  /** A u64, exactly, or null if fewer than 8 bytes remain. */
  readU64BigInt(): bigint | null {
    if (this.left < 8) return null;
    const low = this.readU32()!;
    return (BigInt(this.readU32()!) << 32n) | BigInt(low);
  }
}

/** Writes into a chain's device-writable buffers (or any list of buffers) as one stream. */
export class ChainWriter extends ChainCursor {
  constructor(source: Buffers) {
    super(buffersOf(source, true));
  }

  /** Bytes written (or skipped) so far: what addUsed reports, if written from the start. */
  get written(): number {
    return this.length - this.left;
  }

  /** Write as much of `data` as fits; returns how many bytes were written (short at the end). */
  write(data: Uint8Array): number {
    return this.transfer(data, true);
  }

  /** Write all of `data`, or nothing (returning false) if it does not fit. */
  writeAll(data: Uint8Array): boolean {
    if (data.length > this.left) return false;
    this.transfer(data, true);
    return true;
  }

  /** Write `n` copies of `value` (default 0), as many as fit; returns how many were written. */
  fill(n: number, value = 0): number {
    const count = Math.min(Math.max(0, Math.floor(n)), this.left);
    let done = 0;
    while (done < count) {
      const step = Math.min(count - done, this.current.length - this.pos);
      this.current.fill(value, this.pos, this.pos + step);
      this.pos += step;
      done += step;
      this.left -= step;
      this.settle();
    }
    return count;
  }

  writeU8(value: number): boolean {
    if (this.left < 1) return false;
    this.current[this.pos++] = value;
    this.left--;
    this.settle();
    return true;
  }

  writeU16(value: number): boolean {
    if (this.left < 2) return false;
    const b = this.current;
    const p = this.pos;
    if (p + 2 > b.length) return this.writeU8(value & 0xff) && this.writeU8((value >>> 8) & 0xff);
    b[p] = value;
    b[p + 1] = value >>> 8;
    this.pos = p + 2;
    this.left -= 2;
    this.settle();
    return true;
  }

  writeU32(value: number): boolean {
    if (this.left < 4) return false;
    const b = this.current;
    const p = this.pos;
    if (p + 4 > b.length) {
      for (let shift = 0; shift < 32; shift += 8) this.writeU8((value >>> shift) & 0xff);
      return true;
    }
    b[p] = value;
    b[p + 1] = value >>> 8;
    b[p + 2] = value >>> 16;
    b[p + 3] = value >>> 24;
    this.pos = p + 4;
    this.left -= 4;
    this.settle();
    return true;
  }

  /** A u64 from a non-negative integer number (below 2^53) or a bigint (taken mod 2^64). */
  writeU64(value: number | bigint): boolean {
    if (this.left < 8) return false;
    let low: number;
    let high: number;
    if (typeof value === 'bigint') {
      low = Number(value & 0xffffffffn);
      high = Number((value >> 32n) & 0xffffffffn);
    } else {
      low = value >>> 0;
      high = Math.floor(value / TWO_POW_32) >>> 0;
    }
    return this.writeU32(low) && this.writeU32(high);
  }
}
