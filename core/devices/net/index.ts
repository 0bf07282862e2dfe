// virtio-net with passt as the network stack: the device, its link to passt, and the pieces
// the tests drive directly.
export {
  VirtioNetDevice,
  NET_RX_QUEUE,
  NET_TX_QUEUE,
  type VirtioNetOptions,
  type VirtioNetStats,
} from './net-device.ts';
export { PasstLink, findPasst, type PasstLinkOptions } from './passt.ts';
export { FramePort, DEFAULT_MAX_BUFFERED_BYTES, type FramePortOptions } from './frame-port.ts';
export {
  FrameDecoder,
  FrameStreamError,
  LENGTH_PREFIX_BYTES,
  allocPrefixedFrame,
} from './frame-stream.ts';
export { DEFAULT_MTU, MAX_FRAME_BYTES, MIN_FRAME_BYTES, formatMac, parseMac } from './config.ts';
export * from './features.ts';
export {
  NET_HDR_BYTES,
  LEGACY_NET_HDR_BYTES,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
} from './net-header.ts';
export { completeChecksum, internetChecksum } from './checksum.ts';
