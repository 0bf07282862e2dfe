// A virtio-blk request as it lies in a descriptor chain (virtio 1.2, 5.2.6):
//
//   device-readable:  le32 type, le32 reserved, le64 sector | data (OUT, DISCARD, WRITE_ZEROES)
//   device-writable:  data (IN, GET_ID)                      | u8 status (the last writable byte)
//
// The driver chooses how these bytes are split into buffers (2.7.4), so the header may straddle
// buffers and the status byte may share one with data. BlkRequest finds the parts and keeps
// views of the data in place (no copy); what the request means is for the executor to judge.
// One BlkRequest is reused for every request: parsing allocates nothing when each part has
// buffers of its own, as Linux sends them.
import { ChainReader, type DescriptorChain } from '../queue/index.ts';
import {
  REQUEST_HEADER_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
} from './spec.ts';

const TWO_POW_32 = 0x1_0000_0000;

export class BlkRequest {
  /** The request type (header.type). */
  type = 0;
  /**
   * header.sector. Exact below 2^53; a larger u64 comes out rounded but never below 2^53, so a
   * range check against the capacity still rejects it.
   */
  sector = 0;
  /**
   * The data buffers in order, none empty: the device-writable ones before the status byte for
   * IN and GET_ID, the device-readable ones after the header for every other type.
   */
  readonly data: Uint8Array[] = [];
  /** Total length of `data`. */
  dataBytes = 0;
  /** The buffer holding the status byte, or null when the chain has no writable byte. */
  statusBuffer: Uint8Array | null = null;
  statusOffset = 0;
  /** Data bytes the device wrote to guest memory (for the used length). */
  written = 0;

  /**
   * Take `chain` apart. Returns VIRTIO_BLK_S_OK when it has a header, a status byte and data as
   * the type says, else VIRTIO_BLK_S_IOERR; with no status byte (statusBuffer null) the request
   * can only be completed with a used length of 0.
   */
  parse(chain: DescriptorChain): number {
    this.data.length = 0;
    this.dataBytes = 0;
    this.written = 0;
    this.type = 0;
    this.sector = 0;

    // The status byte: the last byte of the last non-empty writable buffer.
    const writable = chain.writable;
    let statusIndex = writable.length - 1;
    while (statusIndex >= 0 && writable[statusIndex]!.length === 0) statusIndex--;
    if (statusIndex < 0) {
      this.statusBuffer = null;
      return VIRTIO_BLK_S_IOERR;
    }
    const statusBuffer = writable[statusIndex]!;
    this.statusBuffer = statusBuffer;
    this.statusOffset = statusBuffer.length - 1;

    // The header must be device-readable: one in a writable buffer leaves too few readable bytes.
    if (chain.readableBytes < REQUEST_HEADER_SIZE) return VIRTIO_BLK_S_IOERR;
    const readable = chain.readable;
    const first = readable[0]!;
    let dataIndex: number;
    let dataOffset: number;
    if (first.length >= REQUEST_HEADER_SIZE) {
      this.type = u32(first, 0);
      this.sector = u32(first, 12) * TWO_POW_32 + u32(first, 8);
      dataIndex = 0;
      dataOffset = REQUEST_HEADER_SIZE;
    } else {
      const reader = new ChainReader(readable);
      this.type = reader.readU32()!;
      reader.skip(4);
      this.sector = reader.readU64()!;
      ({ index: dataIndex, offset: dataOffset } = locate(readable, REQUEST_HEADER_SIZE));
    }

    if (this.type === VIRTIO_BLK_T_IN || this.type === VIRTIO_BLK_T_GET_ID) {
      for (let i = 0; i < statusIndex; i++) this.addData(writable[i]!);
      if (this.statusOffset > 0) this.addData(statusBuffer.subarray(0, this.statusOffset));
    } else {
      for (let i = dataIndex; i < readable.length; i++) {
        const buffer = readable[i]!;
        this.addData(i === dataIndex && dataOffset > 0 ? buffer.subarray(dataOffset) : buffer);
      }
    }
    return VIRTIO_BLK_S_OK;
  }

  /** Write the status byte (if there is one) and return the used length: data written + 1. */
  complete(status: number): number {
    const buffer = this.statusBuffer;
    if (buffer === null) return 0;
    buffer[this.statusOffset] = status;
    return this.written + 1;
  }

  private addData(buffer: Uint8Array): void {
    if (buffer.length === 0) return;
    this.data.push(buffer);
    this.dataBytes += buffer.length;
  }
}

/** A little-endian u32 at `offset` of `bytes` (the caller checked the length). */
function u32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! |
      (bytes[offset + 1]! << 8) |
      (bytes[offset + 2]! << 16) |
      (bytes[offset + 3]! << 24)) >>>
    0
  );
}

/** The buffer index and offset of stream byte `position` (which lies inside the buffers). */
function locate(
  buffers: readonly Uint8Array[],
  position: number,
): { index: number; offset: number } {
  let left = position;
  for (let index = 0; index < buffers.length; index++) {
    const length = buffers[index]!.length;
    if (left < length) return { index, offset: left };
    left -= length;
  }
  return { index: buffers.length, offset: 0 };
}
