// Turning one tx chain into a frame for the network stack (virtio 1.2, 5.1.6.2): skip the
// virtio_net_hdr, copy the frame (the guest may rewrite its buffer once it is used, and we
// checksum our copy), and complete a partial checksum if the driver asked for one.
//
// Dropped, never relayed: a malformed chain, a chain shorter than the header, a frame outside
// 14..65535 bytes, GSO (never offered), NEEDS_CSUM without CSUM or with offsets outside the frame.
// Writable buffers in a tx chain (wrong direction) are ignored.
import type { DescriptorChain } from '../queue/index.ts';
import { ChainReader } from '../queue/index.ts';
import { completeChecksum } from './checksum.ts';
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES } from './config.ts';
import { allocPrefixedFrame, LENGTH_PREFIX_BYTES } from './frame-stream.ts';
import {
  readNetHeader,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
} from './net-header.ts';

export type TxDrop = 'short' | 'size' | 'gso' | 'checksum';

/**
 * The chain's frame with its length prefix (ready for FramePort.send), or why it is dropped.
 */
export function readTxFrame(
  chain: DescriptorChain,
  headerBytes: number,
  checksumOffload: boolean,
): Buffer | TxDrop {
  const reader = new ChainReader(chain);
  const header = readNetHeader(reader, headerBytes);
  if (header === null) return 'short';
  const length = reader.remaining;
  if (length < MIN_FRAME_BYTES || length > MAX_FRAME_BYTES) return 'size';
  if (header.gsoType !== VIRTIO_NET_HDR_GSO_NONE) return 'gso';
  const prefixed = allocPrefixedFrame(length);
  reader.readInto(prefixed.subarray(LENGTH_PREFIX_BYTES));
  if ((header.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
    if (!checksumOffload) return 'checksum';
    const frame = prefixed.subarray(LENGTH_PREFIX_BYTES);
    if (!completeChecksum(frame, header.csumStart, header.csumOffset)) return 'checksum';
  }
  return prefixed;
}
