// struct virtio_net_hdr (virtio 1.2, 5.1.6): the header in front of every frame on both queues.
// 12 bytes with VERSION_1 or MRG_RXBUF (num_buffers included), 10 for a legacy driver without
// MRG_RXBUF.
import type { ChainReader, ChainWriter } from '../queue/index.ts';

/** flags: the driver left a partial checksum at csum_start + csum_offset (tx, with CSUM). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags: the device checked the checksum (rx, with GUEST_CSUM). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;

export const NET_HDR_BYTES = 12;
export const LEGACY_NET_HDR_BYTES = 10;

export interface NetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Reads the header's first 10 bytes and skips the rest of a `size`-byte header; null if short. */
export function readNetHeader(reader: ChainReader, size: number): NetHeader | null {
  if (reader.remaining < size) return null;
  const header: NetHeader = {
    flags: reader.readU8()!,
    gsoType: reader.readU8()!,
    hdrLen: reader.readU16()!,
    gsoSize: reader.readU16()!,
    csumStart: reader.readU16()!,
    csumOffset: reader.readU16()!,
  };
  reader.skip(size - LEGACY_NET_HDR_BYTES);
  return header;
}

/** An rx header: no GSO, `flags`, and num_buffers when the header has room for it. */
export function writeRxHeader(
  writer: ChainWriter,
  size: number,
  flags: number,
  numBuffers: number,
): boolean {
  if (writer.remaining < size) return false;
  writer.writeU8(flags);
  writer.writeU8(VIRTIO_NET_HDR_GSO_NONE);
  writer.fill(8);
  if (size > LEGACY_NET_HDR_BYTES) writer.writeU16(numBuffers);
  return true;
}
