// The virtio entropy device (virtio 1.2, 5.4): one queue, whose device-writable buffers the device
// fills with random bytes from the host's CSPRNG. A request may be served in part (5.4.6: the
// used length says how much), so each is capped, which keeps one greedy chain from holding the
// event loop.
import { randomFillSync } from 'node:crypto';
import type { SplitQueue } from '../queue/index.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  bit,
  type DeviceContext,
  type VirtioDevice,
} from '../virtio-device.ts';

export const DEFAULT_RNG_MAX_BYTES_PER_REQUEST = 64 * 1024;

export interface VirtioRngOptions {
  /** Most bytes given to one request (default 64 KiB); the driver asks again for more. */
  maxBytesPerRequest?: number;
  /** The largest queue size offered (default 256). */
  maxQueueSize?: number;
  /** Fills a buffer with random bytes (default crypto.randomFillSync); tests may replace it. */
  fill?: (buffer: Uint8Array) => void;
}

export class VirtioRngDevice implements VirtioDevice {
  readonly type = VirtioDeviceType.entropy;
  readonly name = 'virtio-rng';
  readonly queueCount = 1;
  readonly maxQueueSize: number;
  readonly features =
    bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);
  readonly maxBytesPerRequest: number;

  private readonly fill: (buffer: Uint8Array) => void;
  private context: DeviceContext | null = null;
  private resetRequested = false;

  constructor(options: VirtioRngOptions = {}) {
    const max = options.maxBytesPerRequest ?? DEFAULT_RNG_MAX_BYTES_PER_REQUEST;
    if (!(Number.isSafeInteger(max) && max >= 1)) {
      throw new RangeError(`virtio-rng: maxBytesPerRequest must be a positive integer: ${max}`);
    }
    this.maxBytesPerRequest = max;
    this.maxQueueSize = options.maxQueueSize ?? 256;
    this.fill = options.fill ?? ((buffer) => randomFillSync(buffer));
  }

  /** No device-specific configuration (5.4.4). */
  config(): Uint8Array {
    return new Uint8Array(0);
  }

  activate(context: DeviceContext): void {
    this.context = context;
    this.resetRequested = false;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === null || index !== 0) return;
    const queue = context.queues[0];
    if (!queue) return;
    try {
      this.drain(queue);
    } catch (error) {
      // Only a failing fill() gets here (the host's entropy source): stop rather than throw.
      this.requestReset(context, `entropy source failed: ${(error as Error).message}`);
      return;
    }
    if (queue.broken !== null) {
      this.requestReset(context, queue.broken);
      return;
    }
    if (queue.needsInterrupt()) context.interrupt(0);
  }

  reset(): void {
    this.context = null;
    this.resetRequested = false;
  }

  /** Serve every available request; see VirtioBlkDevice for the notification dance. */
  private drain(queue: SplitQueue): void {
    do {
      queue.disableNotifications();
      for (let next = queue.pop(); next !== null; next = queue.pop()) {
        if ('error' in next) {
          queue.addUsed(next.head, 0);
          continue;
        }
        let left = this.maxBytesPerRequest;
        let written = 0;
        for (const buffer of next.chain.writable) {
          if (left === 0) break;
          const step = Math.min(left, buffer.length);
          if (step === 0) continue;
          this.fill(step === buffer.length ? buffer : buffer.subarray(0, step));
          written += step;
          left -= step;
        }
        queue.addUsed(next.chain.head, written);
      }
    } while (queue.enableNotifications());
  }

  private requestReset(context: DeviceContext, reason: string): void {
    if (this.resetRequested) return;
    this.resetRequested = true;
    context.needsReset(`${this.name}: ${reason}`);
  }
}
