// The data of DISCARD and WRITE_ZEROES requests (virtio 1.2, 5.2.6): one or more
//
//   struct virtio_blk_discard_write_zeroes { le64 sector; le32 num_sectors; le32 flags; }
//
// Segments are copied out of guest memory and checked all together before any is carried out,
// so a bad segment fails the request without a half-done effect; the copy means the guest cannot
// change a segment between the check and its use.
import { ChainReader } from '../queue/index.ts';
import {
  SEGMENT_F_UNMAP,
  SEGMENT_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
} from './spec.ts';

export interface SegmentRules {
  /** Most segments in one request (max_discard_seg or max_write_zeroes_seg). */
  maxSegments: number;
  /** Most sectors in one segment. */
  maxSectors: number;
  /** Disk size in sectors. */
  capacity: number;
  /** DISCARD: the unmap flag is an error (5.2.6.2: UNSUPP). */
  unmapForbidden: boolean;
}

/** Parsed segments; sized once for the largest count the device accepts. */
export class SegmentList {
  count = 0;
  readonly sector: Float64Array;
  readonly sectors: Uint32Array;
  readonly unmap: Uint8Array;

  constructor(capacity: number) {
    this.sector = new Float64Array(capacity);
    this.sectors = new Uint32Array(capacity);
    this.unmap = new Uint8Array(capacity);
  }

  /**
   * Read and check the segments in `data` (`dataBytes` long). Returns VIRTIO_BLK_S_OK, IOERR (no
   * segment, a partial one, too many, too long, or beyond the disk) or UNSUPP (a reserved flag
   * bit, or unmap on a discard).
   */
  parse(data: readonly Uint8Array[], dataBytes: number, rules: SegmentRules): number {
    this.count = 0;
    if (dataBytes === 0 || dataBytes % SEGMENT_SIZE !== 0) return VIRTIO_BLK_S_IOERR;
    const count = dataBytes / SEGMENT_SIZE;
    if (count > rules.maxSegments || count > this.sector.length) return VIRTIO_BLK_S_IOERR;
    const reader = new ChainReader(data);
    for (let i = 0; i < count; i++) {
      const sector = reader.readU64()!;
      const sectors = reader.readU32()!;
      const flags = reader.readU32()!;
      if ((flags & ~SEGMENT_F_UNMAP) !== 0) return VIRTIO_BLK_S_UNSUPP;
      const unmap = (flags & SEGMENT_F_UNMAP) !== 0;
      if (unmap && rules.unmapForbidden) return VIRTIO_BLK_S_UNSUPP;
      if (sectors > rules.maxSectors) return VIRTIO_BLK_S_IOERR;
      // Overflow-safe: sector is checked before the subtraction, and both stay below 2^53.
      if (sector > rules.capacity || sectors > rules.capacity - sector) return VIRTIO_BLK_S_IOERR;
      this.sector[i] = sector;
      this.sectors[i] = sectors;
      this.unmap[i] = unmap ? 1 : 0;
    }
    this.count = count;
    return VIRTIO_BLK_S_OK;
  }
}
