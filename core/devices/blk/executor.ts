// Carries out a parsed virtio-blk request against the disk file and says which status it earns
// (virtio 1.2, 5.2.6). Everything the driver wrote is checked first (type, data length, sector
// range, read-only, segments); a host I/O error (EIO, ENOSPC...) is IOERR for that request only.
import { hasFeature } from '../virtio-device.ts';
import type { BlkLimits } from './config.ts';
import type { DiskFile } from './disk-file.ts';
import type { BlkRequest } from './request.ts';
import { SegmentList } from './segments.ts';
import {
  ID_BYTES,
  SECTOR_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from './spec.ts';

export interface BlkExecutorOptions {
  disk: DiskFile;
  /** The device ID string, NUL-padded to 20 bytes. */
  id: Uint8Array;
  limits: BlkLimits;
  /** Called with each host I/O error (the guest sees IOERR). */
  onIoError?: ((error: unknown, request: { type: number; sector: number }) => void) | undefined;
}

export class BlkRequestExecutor {
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  /** The features the driver accepted: DISCARD and WRITE_ZEROES without them are UNSUPP. */
  features = 0n;
  private readonly disk: DiskFile;
  private readonly id: Uint8Array;
  private readonly limits: BlkLimits;
  private readonly segments: SegmentList;
  private readonly onIoError: BlkExecutorOptions['onIoError'];

  constructor(options: BlkExecutorOptions) {
    this.disk = options.disk;
    this.capacity = Math.floor(options.disk.sizeBytes / SECTOR_SIZE);
    this.id = options.id;
    this.limits = options.limits;
    this.onIoError = options.onIoError;
    this.segments = new SegmentList(
      Math.max(options.limits.maxDiscardSegments, options.limits.maxWriteZeroesSegments),
    );
  }

  /** Carry out `request` (parsed, with a status byte); returns its status. */
  execute(request: BlkRequest): number {
    switch (request.type) {
      case VIRTIO_BLK_T_IN:
        return this.transfer(request, false);
      case VIRTIO_BLK_T_OUT:
        return this.transfer(request, true);
      case VIRTIO_BLK_T_FLUSH:
        return this.io(request, () => this.disk.flush());
      case VIRTIO_BLK_T_GET_ID:
        return this.getId(request);
      // A read-only device does not offer these, but refuses them as writes all the same.
      case VIRTIO_BLK_T_DISCARD:
        if (this.disk.readOnly) return VIRTIO_BLK_S_IOERR;
        if (!hasFeature(this.features, VIRTIO_BLK_F_DISCARD)) return VIRTIO_BLK_S_UNSUPP;
        return this.zeroSegments(request, true);
      case VIRTIO_BLK_T_WRITE_ZEROES:
        if (this.disk.readOnly) return VIRTIO_BLK_S_IOERR;
        if (!hasFeature(this.features, VIRTIO_BLK_F_WRITE_ZEROES)) return VIRTIO_BLK_S_UNSUPP;
        return this.zeroSegments(request, false);
      default:
        return VIRTIO_BLK_S_UNSUPP;
    }
  }

  /** IN or OUT: whole sectors, inside the disk, moved straight to or from guest memory. */
  private transfer(request: BlkRequest, write: boolean): number {
    // 5.2.6.2: a read-only device fails every write and writes nothing.
    if (write && this.disk.readOnly) return VIRTIO_BLK_S_IOERR;
    const bytes = request.dataBytes;
    if (bytes % SECTOR_SIZE !== 0 || !this.inDisk(request.sector, bytes / SECTOR_SIZE)) {
      return VIRTIO_BLK_S_IOERR;
    }
    const position = request.sector * SECTOR_SIZE;
    try {
      if (write) {
        this.disk.write(request.data, bytes, position);
      } else {
        this.disk.read(request.data, bytes, position);
        request.written = bytes;
      }
      return VIRTIO_BLK_S_OK;
    } catch (error) {
      request.written = 0;
      this.onIoError?.(error, request);
      return VIRTIO_BLK_S_IOERR;
    }
  }

  /** GET_ID: the ID string, NUL-padded, into as much of the 20 bytes as the driver gave room for. */
  private getId(request: BlkRequest): number {
    let left = Math.min(request.dataBytes, ID_BYTES);
    let from = 0;
    for (const buffer of request.data) {
      if (left === 0) break;
      const step = Math.min(left, buffer.length);
      buffer.set(this.id.subarray(from, from + step));
      from += step;
      left -= step;
    }
    request.written = from;
    return VIRTIO_BLK_S_OK;
  }

  /** DISCARD (punch holes) or WRITE_ZEROES (punch holes with unmap, else zero-range). */
  private zeroSegments(request: BlkRequest, discard: boolean): number {
    const segments = this.segments;
    const status = segments.parse(request.data, request.dataBytes, {
      maxSegments: discard ? this.limits.maxDiscardSegments : this.limits.maxWriteZeroesSegments,
      maxSectors: discard ? this.limits.maxDiscardSectors : this.limits.maxWriteZeroesSectors,
      capacity: this.capacity,
      unmapForbidden: discard,
    });
    if (status !== VIRTIO_BLK_S_OK) return status;
    return this.io(request, () => {
      for (let i = 0; i < segments.count; i++) {
        const offset = segments.sector[i]! * SECTOR_SIZE;
        const length = segments.sectors[i]! * SECTOR_SIZE;
        if (discard) this.disk.discard(offset, length);
        else this.disk.writeZeroes(offset, length, segments.unmap[i] === 1);
      }
    });
  }

  /** Run a file operation: OK, or IOERR if it throws. */
  private io(request: BlkRequest, operation: () => void): number {
    try {
      operation();
      return VIRTIO_BLK_S_OK;
    } catch (error) {
      this.onIoError?.(error, request);
      return VIRTIO_BLK_S_IOERR;
    }
  }

  /** [sector, sector + sectors) lies inside the disk (no overflow: sector is checked first). */
  private inDisk(sector: number, sectors: number): boolean {
    return sector <= this.capacity && sectors <= this.capacity - sector;
  }
}
