// The contract between a virtio device model and the transport that carries it (vhost-user
// today, our own virtio-pci later). A device sees guest memory through GuestMemory, its queues,
// and an interrupt callback: nothing else (DESIGN.md, "Devices"). The transport negotiates
// features, sets the queues up, and calls the device when the driver kicks a queue.
import type { GuestMemory } from './guest-memory.ts';
import type { SplitQueue } from './queue/index.ts';

/** Feature bits shared by every device (virtio 1.2, section 6). */
export const VIRTIO_F_INDIRECT_DESC = 28n;
export const VIRTIO_F_EVENT_IDX = 29n;
export const VIRTIO_F_VERSION_1 = 32n;
export const VIRTIO_F_ACCESS_PLATFORM = 33n;

export function bit(n: bigint): bigint {
  return 1n << n;
}

export function hasFeature(features: bigint, n: bigint): boolean {
  return (features & bit(n)) !== 0n;
}

/** Device type IDs (virtio 1.2, section 5). */
export const VirtioDeviceType = { net: 1, block: 2, entropy: 4, vsock: 19 } as const;

export interface DeviceContext {
  memory: GuestMemory;
  /** Queues by index; a queue the driver did not set up is null. */
  queues: (SplitQueue | null)[];
  /** The features the driver accepted (a subset of the device's features). */
  features: bigint;
  /** Raise the used-buffer interrupt of queue `index` (the transport applies no suppression). */
  interrupt(index: number): void;
  /**
   * The device cannot go on (the ring itself is broken): the transport sets DEVICE_NEEDS_RESET
   * (or for vhost-user stops the device and logs `reason`). Never throw instead.
   */
  needsReset(reason: string): void;
}

export interface VirtioDevice {
  readonly type: number;
  /** Human name for logs ("virtio-blk"). */
  readonly name: string;
  readonly queueCount: number;
  readonly maxQueueSize: number;
  /** Features offered; always includes VERSION_1. */
  readonly features: bigint;
  /** The device-specific config space (little-endian, as the driver reads it). */
  config(): Uint8Array;
  /** A driver write to config space; most devices ignore it. */
  writeConfig?(offset: number, data: Uint8Array): void;
  /** The driver is ready (DRIVER_OK, or vhost-user: all queues started). */
  activate(context: DeviceContext): void;
  /** The driver kicked queue `index`. Process what is available, batched, then interrupt once. */
  notify(index: number): void;
  /** Back to the state before activate (driver reset, or the frontend disconnected). */
  reset(): void;
}
