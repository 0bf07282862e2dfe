// The virtio-vsock packet header (virtio 1.2, 5.10.6): struct virtio_vsock_hdr, 44 bytes,
// little-endian, in front of every packet on the rx and tx queues. Parsing goes through
// ChainReader/ChainWriter so a header may straddle descriptors, as the driver chooses.
import type { ChainReader, ChainWriter } from '../queue/index.ts';

/** sizeof(struct virtio_vsock_hdr). */
export const VSOCK_HDR_SIZE = 44;
/** The host's CID: the only destination this device serves. */
export const VSOCK_HOST_CID = 2;
/** Largest payload of one packet we send or accept (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const VSOCK_MAX_PAYLOAD = 64 * 1024;

/** hdr.type: only stream sockets (VIRTIO_VSOCK_F_SEQPACKET is not offered). */
export const VSOCK_TYPE_STREAM = 1;

/** hdr.op. */
export const VsockOp = {
  request: 1,
  response: 2,
  rst: 3,
  shutdown: 4,
  rw: 5,
  creditUpdate: 6,
  creditRequest: 7,
} as const;

/** hdr.flags of a SHUTDOWN: the sender will receive no more / send no more. */
export const SHUTDOWN_RCV = 1;
export const SHUTDOWN_SEND = 2;
export const SHUTDOWN_BOTH = SHUTDOWN_RCV | SHUTDOWN_SEND;

/** struct virtio_vsock_event id on the event queue (5.10.6.7). */
export const VSOCK_EVENT_TRANSPORT_RESET = 0;

export interface VsockHeader {
  /**
   * CIDs are u64 on the wire. Kept as numbers: exact below 2^53, and a larger value reads back
   * as something >= 2^53, so comparisons with real CIDs stay correct.
   */
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Read a header from the stream; null (nothing consumed) if fewer than 44 bytes remain. */
export function readHeader(reader: ChainReader): VsockHeader | null {
  if (reader.remaining < VSOCK_HDR_SIZE) return null;
  return {
    srcCid: reader.readU64()!,
    dstCid: reader.readU64()!,
    srcPort: reader.readU32()!,
    dstPort: reader.readU32()!,
    len: reader.readU32()!,
    type: reader.readU16()!,
    op: reader.readU16()!,
    flags: reader.readU32()!,
    bufAlloc: reader.readU32()!,
    fwdCnt: reader.readU32()!,
  };
}

/** Write a header into the stream; false (nothing written) if fewer than 44 bytes remain. */
export function writeHeader(writer: ChainWriter, h: VsockHeader): boolean {
  if (writer.remaining < VSOCK_HDR_SIZE) return false;
  writer.writeU64(h.srcCid);
  writer.writeU64(h.dstCid);
  writer.writeU32(h.srcPort);
  writer.writeU32(h.dstPort);
  writer.writeU32(h.len);
  writer.writeU16(h.type);
  writer.writeU16(h.op);
  writer.writeU32(h.flags);
  writer.writeU32(h.bufAlloc);
  writer.writeU32(h.fwdCnt);
  return true;
}

/** The header as 44 bytes (for drivers in tests, logs, and anything outside a chain). */
export function encodeHeader(h: VsockHeader): Uint8Array {
  const out = new Uint8Array(VSOCK_HDR_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, BigInt(h.srcCid)), true);
  dv.setBigUint64(8, BigInt.asUintN(64, BigInt(h.dstCid)), true);
  dv.setUint32(16, h.srcPort >>> 0, true);
  dv.setUint32(20, h.dstPort >>> 0, true);
  dv.setUint32(24, h.len >>> 0, true);
  dv.setUint16(28, h.type & 0xffff, true);
  dv.setUint16(30, h.op & 0xffff, true);
  dv.setUint32(32, h.flags >>> 0, true);
  dv.setUint32(36, h.bufAlloc >>> 0, true);
  dv.setUint32(40, h.fwdCnt >>> 0, true);
  return out;
}

/** Parse the first 44 bytes of `bytes`; null if shorter. */
export function decodeHeader(bytes: Uint8Array): VsockHeader | null {
  if (bytes.length < VSOCK_HDR_SIZE) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HDR_SIZE);
  return {
    srcCid: Number(dv.getBigUint64(0, true)),
    dstCid: Number(dv.getBigUint64(8, true)),
    srcPort: dv.getUint32(16, true),
    dstPort: dv.getUint32(20, true),
    len: dv.getUint32(24, true),
    type: dv.getUint16(28, true),
    op: dv.getUint16(30, true),
    flags: dv.getUint32(32, true),
    bufAlloc: dv.getUint32(36, true),
    fwdCnt: dv.getUint32(40, true),
  };
}

const OP_NAMES = [
  'INVALID',
  'REQUEST',
  'RESPONSE',
  'RST',
  'SHUTDOWN',
  'RW',
  'CREDIT_UPDATE',
  'CREDIT_REQUEST',
];

/** "RW", "SHUTDOWN"... for logs; unknown ops as "op 42". */
export function opName(op: number): string {
  return OP_NAMES[op] ?? `op ${op}`;
}
