// The numbers of the virtio block device (virtio 1.2, section 5.2): feature bits, request types,
// status values and the sizes of the structures a request is made of. Nothing else lives here.

/** Feature bits (5.2.3). Only those the device offers, plus RO. */
export const VIRTIO_BLK_F_SEG_MAX = 2n;
export const VIRTIO_BLK_F_RO = 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 6n;
export const VIRTIO_BLK_F_FLUSH = 9n;
export const VIRTIO_BLK_F_DISCARD = 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14n;

/** Request types (5.2.6). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;

/** Values of the status byte, the last device-writable byte of every request. */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** The protocol's unit, whatever blk_size says. */
export const SECTOR_SIZE = 512;

/** struct virtio_blk_req up to data: le32 type, le32 reserved, le64 sector. */
export const REQUEST_HEADER_SIZE = 16;

/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
export const SEGMENT_SIZE = 16;
/** flags.unmap: write zeroes may deallocate (it is an error on discard). */
export const SEGMENT_F_UNMAP = 1;

/** The device ID string of GET_ID: NUL-padded ASCII, no terminator when 20 bytes long. */
export const ID_BYTES = 20;
