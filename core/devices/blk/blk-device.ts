// The virtio block device (virtio 1.2, 5.2) over a sparse raw file: one request queue, requests
// carried out synchronously as they are popped, one interrupt per batch. The parts: config.ts
// (config space and limits), request.ts (a request in a chain), executor.ts (what a request
// does), segments.ts (discard and write-zeroes ranges), disk-file.ts (the file I/O).
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
import { DEFAULT_BLK_LIMITS, encodeBlkConfig, type BlkLimits } from './config.ts';
import { DiskFile, type DiskFileOps } from './disk-file.ts';
import { BlkRequestExecutor } from './executor.ts';
import { BlkRequest } from './request.ts';
import {
  ID_BYTES,
  SECTOR_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_OK,
} from './spec.ts';

export interface VirtioBlkOptions {
  /** The backing file: a raw disk image, usually sparse. Opened once, by the constructor. */
  path: string;
  /**
   * Open the file read-only and offer VIRTIO_BLK_F_RO (and neither DISCARD nor WRITE_ZEROES):
   * every write, discard and write-zeroes request fails with IOERR.
   */
  readOnly?: boolean;
  /** The device ID string GET_ID returns: printable ASCII, at most 20 bytes. Default: empty. */
  serial?: string;
  /** The largest queue size offered (default 256). */
  maxQueueSize?: number;
  /** Limits advertised in config space and enforced (default DEFAULT_BLK_LIMITS). */
  limits?: Partial<BlkLimits>;
  /** The system calls on the file (default: node:fs and the addon); tests count or fail them. */
  ops?: DiskFileOps;
  /** Told about each host I/O error; the guest gets IOERR for that request and the device goes on. */
  onIoError?: (error: unknown, request: { type: number; sector: number }) => void;
}

export class VirtioBlkDevice implements VirtioDevice {
  readonly type = VirtioDeviceType.block;
  readonly name = 'virtio-blk';
  readonly queueCount = 1;
  readonly maxQueueSize: number;
  readonly features: bigint;
  /** Disk size in 512-byte sectors (file size / 512, fixed at open). */
  readonly capacity: number;
  readonly readOnly: boolean;
  readonly limits: Readonly<BlkLimits>;

  private readonly disk: DiskFile;
  private readonly executor: BlkRequestExecutor;
  private readonly configSpace: Uint8Array;
  /** Reused for every request: processing is synchronous, one request at a time. */
  private readonly request = new BlkRequest();
  private context: DeviceContext | null = null;
  private resetRequested = false;

  constructor(options: VirtioBlkOptions) {
    const id = encodeId(options.serial ?? '');
    this.readOnly = options.readOnly === true;
    this.maxQueueSize = options.maxQueueSize ?? 256;
    this.limits = { ...DEFAULT_BLK_LIMITS, ...options.limits };
    this.disk = new DiskFile(options.path, { readOnly: this.readOnly, ops: options.ops });
    this.executor = new BlkRequestExecutor({
      disk: this.disk,
      id,
      limits: this.limits,
      onIoError: options.onIoError,
    });
    this.capacity = this.executor.capacity;

    let features =
      bit(VIRTIO_F_VERSION_1) |
      bit(VIRTIO_F_EVENT_IDX) |
      bit(VIRTIO_F_INDIRECT_DESC) |
      bit(VIRTIO_BLK_F_SEG_MAX) |
      bit(VIRTIO_BLK_F_BLK_SIZE) |
      bit(VIRTIO_BLK_F_FLUSH);
    if (this.readOnly) features |= bit(VIRTIO_BLK_F_RO);
    else features |= bit(VIRTIO_BLK_F_DISCARD) | bit(VIRTIO_BLK_F_WRITE_ZEROES);
    this.features = features;

    this.configSpace = encodeBlkConfig({
      capacitySectors: this.capacity,
      blockSize: SECTOR_SIZE,
      limits: this.limits,
      writeZeroesMayUnmap: true,
    });
  }

  config(): Uint8Array {
    return this.configSpace.slice();
  }

  activate(context: DeviceContext): void {
    this.context = context;
    this.executor.features = context.features;
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
      // Not reachable from anything a driver writes; if it happens, stop rather than throw.
      this.requestReset(context, `internal error: ${(error as Error).message}`);
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
    this.executor.features = 0n;
    this.resetRequested = false;
  }

  /** Reset, then close the file. The device cannot be activated again. */
  close(): void {
    this.reset();
    this.disk.close();
  }

  /**
   * Complete every available request, with notifications off while busy; if requests arrived
   * while turning them back on, go round again (2.7.10: otherwise they could wait forever).
   */
  private drain(queue: SplitQueue): void {
    const request = this.request;
    do {
      queue.disableNotifications();
      for (let next = queue.pop(); next !== null; next = queue.pop()) {
        if ('error' in next) {
          // A malformed chain: no status byte can be trusted, so it comes back with nothing.
          queue.addUsed(next.head, 0);
          continue;
        }
        let status = request.parse(next.chain);
        if (status === VIRTIO_BLK_S_OK) status = this.executor.execute(request);
        queue.addUsed(next.chain.head, request.complete(status));
      }
    } while (queue.enableNotifications());
  }

  private requestReset(context: DeviceContext, reason: string): void {
    if (this.resetRequested) return;
    this.resetRequested = true;
    context.needsReset(`${this.name}: ${reason}`);
  }
}

/** The GET_ID answer: the serial as ASCII, NUL-padded to 20 bytes. */
function encodeId(serial: string): Uint8Array {
  if (!/^[\x20-\x7e]*$/.test(serial) || serial.length > ID_BYTES) {
    throw new RangeError(
      `virtio-blk: serial must be printable ASCII of at most ${ID_BYTES} bytes: ${JSON.stringify(serial)}`,
    );
  }
  const id = new Uint8Array(ID_BYTES);
  for (let i = 0; i < serial.length; i++) id[i] = serial.charCodeAt(i);
  return id;
}
