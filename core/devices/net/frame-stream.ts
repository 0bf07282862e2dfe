// passt's (and QEMU's `-netdev stream`) framing on a stream socket: every Ethernet frame is
// preceded by its length as a 4-byte big-endian integer. FrameDecoder turns the byte stream back
// into frames, without copying a frame that arrived in one piece; a length outside
// MIN..MAX_FRAME_BYTES means the stream is corrupt (it cannot be resynchronised).
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES } from './config.ts';

export const LENGTH_PREFIX_BYTES = 4;

/** A frame with room for its length prefix in front, for a single write of both. */
export function allocPrefixedFrame(frameBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + frameBytes);
  buffer.writeUInt32BE(frameBytes, 0);
  return buffer;
}

export class FrameStreamError extends Error {}

export class FrameDecoder {
  /** Complete frames not yet taken, oldest first. */
  private readonly frames: Uint8Array[] = [];
  private frameBytes = 0;
  /** Bytes of an incomplete prefix or frame. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private expected = -1;

  /** Bytes held: complete frames plus the incomplete tail. */
  get bufferedBytes(): number {
    return this.frameBytes + this.partialBytes;
  }

  get frameCount(): number {
    return this.frames.length;
  }

  /** Adds bytes from the stream; throws FrameStreamError on an impossible length. */
  push(chunk: Buffer): void {
    let data = chunk;
    if (this.partialBytes > 0) {
      this.partial.push(chunk);
      this.partialBytes += chunk.length;
      const need = LENGTH_PREFIX_BYTES + Math.max(this.expected, 0);
      if (this.partialBytes < need) return;
      data = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
    }
    this.expected = -1;
    let pos = 0;
    while (data.length - pos >= LENGTH_PREFIX_BYTES) {
      const length = data.readUInt32BE(pos);
      if (length < MIN_FRAME_BYTES || length > MAX_FRAME_BYTES) {
        throw new FrameStreamError(
          `frame length ${length} is not in ${MIN_FRAME_BYTES}..${MAX_FRAME_BYTES}: the stream is corrupt`,
        );
      }
      const start = pos + LENGTH_PREFIX_BYTES;
      if (data.length - start < length) {
        this.expected = length;
        break;
      }
      this.frames.push(data.subarray(start, start + length));
      this.frameBytes += length;
      pos = start + length;
    }
    if (pos < data.length) {
      // Copied: the rest of a large read buffer must not stay alive for a few bytes.
      const tail = Buffer.from(data.subarray(pos));
      this.partial = [tail];
      this.partialBytes = tail.length;
    }
  }

  /** The oldest complete frame, or null. */
  peek(): Uint8Array | null {
    return this.frames[0] ?? null;
  }

  /** Drops the oldest complete frame. */
  shift(): void {
    const frame = this.frames.shift();
    if (frame) this.frameBytes -= frame.length;
  }

  clear(): void {
    this.frames.length = 0;
    this.frameBytes = 0;
    this.partial = [];
    this.partialBytes = 0;
    this.expected = -1;
  }
}
