// virtio-vsock (host side): the device, and the packet format for drivers in tests and tools.
export {
  VsockDevice,
  VSOCK_EVENT_QUEUE,
  VSOCK_RX_QUEUE,
  VSOCK_TX_QUEUE,
  type VsockDeviceOptions,
  type VsockDeviceStats,
} from './vsock-device.ts';
export {
  SHUTDOWN_BOTH,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
  VSOCK_EVENT_TRANSPORT_RESET,
  VSOCK_HDR_SIZE,
  VSOCK_HOST_CID,
  VSOCK_MAX_PAYLOAD,
  VSOCK_TYPE_STREAM,
  VsockOp,
  decodeHeader,
  encodeHeader,
  opName,
  type VsockHeader,
} from './packet.ts';
export { CONNECT_LINE_MAX, parseConnectLine } from './connect-line.ts';
