// The device's link to the network stack: a stream socket carrying length-prefixed frames
// (frame-stream.ts), with back-pressure both ways and a bounded amount of memory.
//
//  - Towards the peer: one write per frame, and no write while one is pending. A write that the
//    socket could not take at once makes the port `blocked` until it is flushed; the device then
//    leaves the guest's tx buffers in the ring (and the guest's own queue fills and stops).
//    One write per frame also keeps each length prefix at the start of a socket buffer, which
//    passt's reader (0.0~git20230309) needs: it drops a prefix that a read splits.
//  - From the peer: received frames wait here for guest buffers, up to `maxBufferedBytes`; past
//    that the port stops reading, the socket fills and the peer backs off (passt drops frames
//    it cannot send, and TCP retransmits them later).
import type { Duplex } from 'node:stream';
import { FrameDecoder } from './frame-stream.ts';

export const DEFAULT_MAX_BUFFERED_BYTES = 512 * 1024;

export interface FramePortOptions {
  /** Received bytes buffered before reading stops (default 512 KiB). */
  maxBufferedBytes?: number;
}

export class FramePort {
  /** Called when received frames are ready (after a read that completed at least one). */
  onFrames: () => void = () => {};
  /** Called when a blocked port can take frames again. */
  onWritable: () => void = () => {};
  /** Called once when the stream ends, fails or carries a corrupt frame. */
  onClose: (reason: string) => void = () => {};

  private readonly decoder = new FrameDecoder();
  private readonly maxBuffered: number;
  private isBlocked = false;
  private paused = false;
  private closed = false;
  framesSent = 0;
  bytesSent = 0;
  framesReceived = 0;
  /** Stream bytes, length prefixes included. */
  bytesReceived = 0;

  constructor(
    private readonly stream: Duplex,
    options: FramePortOptions = {},
  ) {
    this.maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('end', () => this.close('the peer closed the connection'));
    stream.on('error', (error: Error) => this.close(`socket error: ${error.message}`));
    stream.on('close', () => this.close('the connection closed'));
  }

  /** A write is pending: send() must wait for onWritable. */
  get blocked(): boolean {
    return this.isBlocked;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Received bytes held (frames and a partial one). */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes;
  }

  /**
   * Sends one frame that already carries its length prefix (allocPrefixedFrame). Returns false
   * if the port is closed or blocked (the frame is not sent).
   */
  send(prefixed: Buffer): boolean {
    if (this.closed || this.isBlocked) return false;
    this.framesSent++;
    this.bytesSent += prefixed.length - 4;
    this.stream.write(prefixed, () => this.flushed());
    if (this.stream.writableLength > 0) this.isBlocked = true;
    return true;
  }

  /** The oldest received frame (a view: use it before calling shift()), or null. */
  peek(): Uint8Array | null {
    return this.decoder.peek();
  }

  /** Done with the oldest received frame; reading resumes once there is room again. */
  shift(): void {
    this.decoder.shift();
    if (this.paused && this.decoder.bufferedBytes <= this.maxBuffered / 2) {
      this.paused = false;
      this.stream.resume();
    }
  }

  close(reason = 'closed by the device'): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.clear();
    this.stream.destroy();
    this.onClose(reason);
  }

  private flushed(): void {
    if (this.isBlocked && this.stream.writableLength === 0 && !this.closed) {
      this.isBlocked = false;
      this.onWritable();
    }
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    const before = this.decoder.frameCount;
    this.bytesReceived += chunk.length;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.close((error as Error).message);
      return;
    }
    const frames = this.decoder.frameCount - before;
    this.framesReceived += frames;
    if (this.decoder.bufferedBytes > this.maxBuffered && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
    if (frames > 0) this.onFrames();
  }
}
