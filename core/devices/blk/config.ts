// The virtio-blk configuration space (virtio 1.2, 5.2.4: struct virtio_blk_config) and the limits
// it advertises. The same limits bound what the device accepts, so a driver that ignores them
// gets IOERR rather than a request the device never promised to handle.
import { SECTOR_SIZE } from './spec.ts';

/** Byte offsets in struct virtio_blk_config (all fields little-endian). */
export const BlkConfigOffset = {
  capacity: 0, // le64, in 512-byte sectors
  sizeMax: 8, // le32 (VIRTIO_BLK_F_SIZE_MAX: not offered)
  segMax: 12, // le32
  geometry: 16, // le16 cylinders, u8 heads, u8 sectors (not offered)
  blkSize: 20, // le32
  topology: 24, // u8, u8, le16, le32 (not offered)
  writeback: 32, // u8 (VIRTIO_BLK_F_CONFIG_WCE: not offered)
  numQueues: 34, // le16 (VIRTIO_BLK_F_MQ: not offered, but 1 is what it would say)
  maxDiscardSectors: 36, // le32
  maxDiscardSeg: 40, // le32
  discardSectorAlignment: 44, // le32
  maxWriteZeroesSectors: 48, // le32
  maxWriteZeroesSeg: 52, // le32
  writeZeroesMayUnmap: 56, // u8, then u8 unused1[3]
} as const;

/**
 * The config space up to the secure-erase fields, which need VIRTIO_BLK_F_SECURE_ERASE (not
 * offered). A transport asked for more bytes than this answers with zeros.
 */
export const BLK_CONFIG_SIZE = 60;

/** What the device accepts, as advertised in config space. */
export interface BlkLimits {
  /** seg_max: data buffers per request (Linux adds 2 for the header and the status). */
  segMax: number;
  /** max_discard_sectors: sectors in one discard segment. */
  maxDiscardSectors: number;
  /** max_discard_seg: segments in one discard request. */
  maxDiscardSegments: number;
  /** discard_sector_alignment: the granularity the driver should split discards at (a hint). */
  discardSectorAlignment: number;
  /** max_write_zeroes_sectors: sectors in one write-zeroes segment. */
  maxWriteZeroesSectors: number;
  /** max_write_zeroes_seg: segments in one write-zeroes request. */
  maxWriteZeroesSegments: number;
}

/**
 * seg_max 126 fits a 128-entry queue (QEMU's default vhost-user-blk size) with the header and
 * status descriptors, so a Linux request never needs an indirect table longer than the queue.
 * A segment may cover up to 2 GiB - 512 (as QEMU's BDRV_REQUEST_MAX_SECTORS); Linux clamps the
 * discard segment count to 256, and 32 keeps one request's validation cheap.
 */
export const DEFAULT_BLK_LIMITS: Readonly<BlkLimits> = {
  segMax: 126,
  maxDiscardSectors: 0x3fffff,
  maxDiscardSegments: 32,
  discardSectorAlignment: 4096 / SECTOR_SIZE,
  maxWriteZeroesSectors: 0x3fffff,
  maxWriteZeroesSegments: 32,
};

export interface BlkConfigFields {
  /** Disk size in 512-byte sectors. */
  capacitySectors: number;
  /** blk_size: the logical block size the driver should use (512). */
  blockSize: number;
  limits: BlkLimits;
  /** write_zeroes_may_unmap: a write-zeroes request with UNMAP may deallocate. */
  writeZeroesMayUnmap: boolean;
}

/** Encode struct virtio_blk_config (little-endian, padding and unoffered fields zero). */
export function encodeBlkConfig(fields: BlkConfigFields): Uint8Array {
  const bytes = new Uint8Array(BLK_CONFIG_SIZE);
  const view = new DataView(bytes.buffer);
  const { limits } = fields;
  view.setBigUint64(BlkConfigOffset.capacity, BigInt(fields.capacitySectors), true);
  view.setUint32(BlkConfigOffset.segMax, limits.segMax, true);
  view.setUint32(BlkConfigOffset.blkSize, fields.blockSize, true);
  view.setUint16(BlkConfigOffset.numQueues, 1, true);
  view.setUint32(BlkConfigOffset.maxDiscardSectors, limits.maxDiscardSectors, true);
  view.setUint32(BlkConfigOffset.maxDiscardSeg, limits.maxDiscardSegments, true);
  view.setUint32(BlkConfigOffset.discardSectorAlignment, limits.discardSectorAlignment, true);
  view.setUint32(BlkConfigOffset.maxWriteZeroesSectors, limits.maxWriteZeroesSectors, true);
  view.setUint32(BlkConfigOffset.maxWriteZeroesSeg, limits.maxWriteZeroesSegments, true);
  view.setUint8(BlkConfigOffset.writeZeroesMayUnmap, fields.writeZeroesMayUnmap ? 1 : 0);
  return bytes;
}
