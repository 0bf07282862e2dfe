// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte header (request,
// flags, payload size), a payload, and file descriptors passed with SCM_RIGHTS. We are the
// back-end; QEMU is the front-end. Parsing is strict: the front-end is another process and its
// messages are checked like any other input.

export const VHOST_USER_VERSION = 1;
export const FLAG_VERSION_MASK = 0x3;
export const FLAG_REPLY = 0x4;
export const FLAG_NEED_REPLY = 0x8;
export const HEADER_SIZE = 12;
/** Our biggest expected payload is SET_MEM_TABLE (8 + 8 * 32) or a config space; be generous. */
export const MAX_PAYLOAD = 4096;
export const MAX_FDS = 8;

export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SET_BACKEND_REQ_FD: 21,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;

export const requestName = (code: number): string =>
  Object.entries(Request).find(([, value]) => value === code)?.[0] ?? `request ${code}`;

/** Virtio feature bit 30: the back-end speaks the protocol-feature extension. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30n;

export const ProtocolFeature = {
  MQ: 0n,
  REPLY_ACK: 3n,
  CONFIG: 9n,
  CONFIGURE_MEM_SLOTS: 15n,
  STATUS: 16n,
} as const;

/** VHOST_USER_SET_VRING_KICK/CALL payload: bit 8 set means "no fd" (polling / disabled). */
export const VRING_INDEX_MASK = 0xffn;
export const VRING_NOFD_MASK = 0x100n;

export interface Message {
  request: number;
  flags: number;
  payload: Buffer;
  fds: number[];
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(`vhost-user: ${message}`);
    this.name = 'ProtocolError';
  }
}

/**
 * Splits a byte stream into messages and gives each its descriptors. A recvmsg on a stream socket
 * may return data-only messages followed by one that carried descriptors, and stops after that
 * one: so descriptors belong to the message that holds the last byte of the read they came with.
 * We record that byte's stream offset and hand the descriptors to the message containing it.
 */
export class MessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** Stream offset of buffer[0]. */
  private offset = 0;
  private pendingFds: { at: number; fds: number[] }[] = [];

  push(data: Buffer, fds: number[]): void {
    if (data.length === 0) return;
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    if (fds.length > 0) this.pendingFds.push({ at: this.offset + this.buffer.length - 1, fds });
  }

  /** The next complete message, null if more bytes are needed; throws ProtocolError on garbage. */
  next(): Message | null {
    if (this.buffer.length < HEADER_SIZE) return null;
    const request = this.buffer.readUInt32LE(0);
    const flags = this.buffer.readUInt32LE(4);
    const size = this.buffer.readUInt32LE(8);
    if ((flags & FLAG_VERSION_MASK) !== VHOST_USER_VERSION) {
      throw new ProtocolError(`unsupported version in flags 0x${flags.toString(16)}`);
    }
    if (size > MAX_PAYLOAD)
      throw new ProtocolError(`${requestName(request)} payload of ${size} bytes is too big`);
    const length = HEADER_SIZE + size;
    if (this.buffer.length < length) return null;
    const payload = Buffer.from(this.buffer.subarray(HEADER_SIZE, length));
    const end = this.offset + length;
    const fds = this.pendingFds.filter((p) => p.at < end).flatMap((p) => p.fds);
    this.pendingFds = this.pendingFds.filter((p) => p.at >= end);
    this.buffer = this.buffer.subarray(length);
    this.offset = end;
    return { request, flags, payload, fds };
  }

  /** Descriptors received but not claimed by a message (to close on disconnect). */
  takeUnclaimedFds(): number[] {
    const fds = this.pendingFds.flatMap((p) => p.fds);
    this.pendingFds = [];
    return fds;
  }
}

export function encodeReply(request: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(request, 0);
  header.writeUInt32LE(VHOST_USER_VERSION | FLAG_REPLY, 4);
  header.writeUInt32LE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

export function u64Payload(value: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(value);
  return buf;
}

/** Payload readers that name the request when the payload is too short. */
export function need(message: Message, bytes: number): void {
  if (message.payload.length < bytes) {
    throw new ProtocolError(
      `${requestName(message.request)} payload has ${message.payload.length} bytes, expected ${bytes}`,
    );
  }
}

export function readU64(message: Message): bigint {
  need(message, 8);
  return message.payload.readBigUInt64LE(0);
}

export interface VringState {
  index: number;
  num: number;
}

export function readVringState(message: Message): VringState {
  need(message, 8);
  return { index: message.payload.readUInt32LE(0), num: message.payload.readUInt32LE(4) };
}

export interface VringAddress {
  index: number;
  flags: number;
  descUser: bigint;
  usedUser: bigint;
  availUser: bigint;
}

export function readVringAddress(message: Message): VringAddress {
  need(message, 40);
  const p = message.payload;
  return {
    index: p.readUInt32LE(0),
    flags: p.readUInt32LE(4),
    descUser: p.readBigUInt64LE(8),
    usedUser: p.readBigUInt64LE(16),
    availUser: p.readBigUInt64LE(24),
  };
}

export interface MemoryRegionMessage {
  guestAddress: bigint;
  size: bigint;
  userAddress: bigint;
  mmapOffset: bigint;
}

function readRegion(p: Buffer, offset: number): MemoryRegionMessage {
  return {
    guestAddress: p.readBigUInt64LE(offset),
    size: p.readBigUInt64LE(offset + 8),
    userAddress: p.readBigUInt64LE(offset + 16),
    mmapOffset: p.readBigUInt64LE(offset + 24),
  };
}

export function readMemoryTable(message: Message): MemoryRegionMessage[] {
  need(message, 8);
  const count = message.payload.readUInt32LE(0);
  if (count === 0 || count > MAX_FDS)
    throw new ProtocolError(`SET_MEM_TABLE with ${count} regions`);
  need(message, 8 + count * 32);
  if (message.fds.length !== count) {
    throw new ProtocolError(
      `SET_MEM_TABLE has ${count} regions but ${message.fds.length} descriptors`,
    );
  }
  return Array.from({ length: count }, (_, i) => readRegion(message.payload, 8 + i * 32));
}

/** ADD_MEM_REG / REM_MEM_REG: u64 padding, then one region. */
export function readSingleRegion(message: Message): MemoryRegionMessage {
  need(message, 40);
  return readRegion(message.payload, 8);
}

export interface ConfigRequest {
  offset: number;
  size: number;
  flags: number;
  data: Buffer;
}

export function readConfigRequest(message: Message): ConfigRequest {
  need(message, 12);
  const p = message.payload;
  const offset = p.readUInt32LE(0);
  const size = p.readUInt32LE(4);
  if (size > MAX_PAYLOAD - 12) throw new ProtocolError(`config access of ${size} bytes`);
  need(message, 12 + size);
  return { offset, size, flags: p.readUInt32LE(8), data: p.subarray(12, 12 + size) };
}

export function encodeConfig(request: ConfigRequest, bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + request.size);
  out.writeUInt32LE(request.offset, 0);
  out.writeUInt32LE(request.size, 4);
  out.writeUInt32LE(request.flags, 8);
  out.set(bytes.subarray(0, request.size), 12);
  return out;
}
