// virtio-vsock, host side (virtio 1.2, 5.10): stream sockets between the guest (its CID from the
// config space) and host processes (CID 2), carried over Unix sockets in the "hybrid vsock"
// convention Firecracker introduced:
//
//   - Host -> guest: a host process connects to `udsPath` and writes `CONNECT <port>\n`. The
//     device sends the guest a REQUEST from an ephemeral host port; when the guest accepts
//     (RESPONSE) the client reads `OK <host port>\n` and from then on the socket is the stream.
//     If the guest refuses (RST), does not answer, or the line is bad or late, the client is
//     closed. `udsPath` is created mode 0600 (see uds-listener.ts).
//   - Guest -> host: a guest connect() to CID 2 port P becomes a connection to the Unix socket
//     `${udsPath}_${P}`: RESPONSE once it is accepted, RST if nobody listens there.
//
// Queues: 0 rx (device -> driver packets, into buffers the driver posts), 1 tx (driver ->
// device packets), 2 event (TRANSPORT_RESET, sent by transportReset()). Every packet starts with
// the 44-byte struct virtio_vsock_hdr (packet.ts). Per connection, the state machine and credit
// flow control live in connection.ts; routing, ports and host sockets in muxer.ts.
//
// The guest is untrusted. A tx packet that is too short, not from the guest's CID, not to CID 2,
// of an unknown type, or that claims more payload than its chain holds (or than 64 KiB) is
// dropped, or answered with an RST when it names a connection; a guest that overruns the credit
// we gave it is RST. Nothing the guest does throws out of notify(): a broken ring (or a bug of
// ours) ends in context.needsReset(). Memory is bounded: per connection at most buf_alloc bytes
// towards the host and about 64 KiB (+ one read) towards the guest, at most maxConnections
// connections, a bounded queue of RSTs, and tx processing yields after a budget of chains.
//
// Batching: a tx kick processes every available chain (up to the budget, then continues on the
// next turn of the event loop), and a pass over rx fills as many buffers as there are packets;
// each pass interrupts at most once per queue, when needsInterrupt() says the driver wants it.
// Host socket events schedule an rx pass with setImmediate, so a burst of them shares one.
import type { DescriptorChain, SplitQueue } from '../queue/index.ts';
import { QueueDevice } from '../queue-device.ts';
import { ChainReader, ChainWriter } from '../queue/index.ts';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  bit,
  type DeviceContext,
  type VirtioDevice,
} from '../virtio-device.ts';
import { VsockMuxer, type VsockMuxerStats } from './muxer.ts';
import { rateLimitedLog } from './rate-limited-log.ts';
import {
  VSOCK_EVENT_TRANSPORT_RESET,
  VSOCK_HDR_SIZE,
  VSOCK_MAX_PAYLOAD,
  VsockOp,
  readHeader,
  writeHeader,
} from './packet.ts';

export const VSOCK_RX_QUEUE = 0;
export const VSOCK_TX_QUEUE = 1;
export const VSOCK_EVENT_QUEUE = 2;

/** Tx chains handled per turn of the event loop before yielding to host I/O. */
const TX_BUDGET = 1024;

export interface VsockDeviceOptions {
  /** The guest's CID (config space guest_cid): 3 or more, below 2^32 - 1. */
  guestCid: number | bigint;
  /** Host-initiated connections are accepted here; guest port P connects to `${udsPath}_P`. */
  udsPath: string;
  /** buf_alloc advertised per connection (default 256 KiB, at most 16 MiB). */
  bufAlloc?: number;
  /** Most connections at once, host clients awaiting CONNECT included (default 1024). */
  maxConnections?: number;
  /** Time a host client has to send its CONNECT line (default 5 s). */
  connectTimeoutMs?: number;
  /** Time the guest has to answer a REQUEST, and a host listener to accept (default 5 s). */
  requestTimeoutMs?: number;
  /** Time to wait for the guest's RST after a full SHUTDOWN, or for a flush (default 8 s). */
  shutdownTimeoutMs?: number;
  /** RSTs waiting for rx buffers; more are dropped (default 1024). */
  maxQueuedRsts?: number;
  /** Queue size offered to the driver (default 256). */
  maxQueueSize?: number;
  /**
   * Diagnostics (connections opening and closing, refused clients), at most 20 lines a second.
   * Default: silent.
   */
  log?: (message: string) => void;
}

export interface VsockDeviceStats extends VsockMuxerStats {
  /** Tx chains that were malformed or too short for a header. */
  badTxChains: number;
  /** Rx chains returned unused (malformed, or too small for a header). */
  badRxChains: number;
}

function checkCid(cid: number | bigint): number {
  const value = typeof cid === 'bigint' ? cid : Number.isInteger(cid) ? BigInt(cid) : -1n;
  if (value < 3n || value >= 0xffffffffn) {
    throw new RangeError(`vsock: guest CID ${String(cid)} is not in 3..2^32-2`);
  }
  return Number(value);
}

export class VsockDevice extends QueueDevice implements VirtioDevice {
  readonly type = VirtioDeviceType.vsock;
  readonly name = 'virtio-vsock';
  readonly queueCount = 3;
  readonly maxQueueSize: number;
  readonly features =
    bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);
  readonly guestCid: number;
  readonly udsPath: string;

  private readonly muxer: VsockMuxer;
  private rxScheduled = false;
  private txScheduled = false;
  private eventPending = false;
  private badTxChains = 0;
  private badRxChains = 0;

  constructor(options: VsockDeviceOptions) {
    super();
    this.guestCid = checkCid(options.guestCid);
    this.udsPath = options.udsPath;
    this.maxQueueSize = options.maxQueueSize ?? 256;
    const bufAlloc = options.bufAlloc ?? 256 * 1024;
    if (!(Number.isInteger(bufAlloc) && bufAlloc >= 1 && bufAlloc <= 16 * 1024 * 1024)) {
      throw new RangeError(`vsock: bufAlloc ${bufAlloc} is not in 1..16 MiB`);
    }
    this.muxer = new VsockMuxer({
      guestCid: this.guestCid,
      udsPath: options.udsPath,
      bufAlloc,
      maxConnections: options.maxConnections ?? 1024,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 8000,
      maxQueuedRsts: options.maxQueuedRsts ?? 1024,
      log: options.log ? rateLimitedLog(options.log) : () => {},
    });
    this.muxer.onRxWork = () => this.scheduleRx();
  }

  /** Start accepting host clients on udsPath (removing a stale socket file first). */
  listen(): Promise<void> {
    return this.muxer.listen();
  }

  /** Stop listening, remove the socket file, close every connection. */
  async close(): Promise<void> {
    this.reset();
    await this.muxer.close();
  }

  /** Live connections (host- or guest-initiated, in any state). */
  get connectionCount(): number {
    return this.muxer.connectionCount;
  }

  stats(): VsockDeviceStats {
    return { ...this.muxer.stats(), badTxChains: this.badTxChains, badRxChains: this.badRxChains };
  }

  config(): Uint8Array {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(this.guestCid), true);
    return out;
  }

  activate(context: DeviceContext): void {
    this.activateQueues(context);
    this.guard(() => {
      this.processTx();
      this.processRx();
      this.processEvents();
    });
  }

  notify(index: number): void {
    this.guard(() => {
      if (index === VSOCK_TX_QUEUE) this.processTx();
      else if (index === VSOCK_RX_QUEUE) this.processRx();
      else if (index === VSOCK_EVENT_QUEUE) this.processEvents();
    });
  }

  reset(): void {
    this.deactivateQueues();
    this.eventPending = false;
    this.muxer.reset();
  }

  /**
   * Tell the guest that every connection is gone (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, e.g.
   * after the host side restarted): all connections are dropped without RSTs, as the guest
   * resets its sockets on this event.
   */
  transportReset(): void {
    this.muxer.reset();
    this.eventPending = true;
    this.guard(() => this.processEvents());
  }

  // --- Queues ---

  private scheduleRx(): void {
    if (this.rxScheduled) return;
    this.rxScheduled = true;
    setImmediate(() => {
      this.rxScheduled = false;
      this.guard(() => this.processRx());
    });
  }

  private processTx(): void {
    const queue = this.queue(VSOCK_TX_QUEUE);
    if (!queue) return;
    let budget = TX_BUDGET;
    for (;;) {
      queue.disableNotifications();
      for (let result = queue.pop(); result !== null; result = queue.pop()) {
        if ('error' in result) {
          this.badTxChains++;
          queue.addUsed(result.head, 0);
        } else {
          this.handleTxChain(queue, result.chain);
        }
        if (--budget === 0) break;
        if (this.failed) return;
      }
      if (budget === 0) {
        // More may be waiting: continue after host I/O had its turn.
        if (!this.txScheduled) {
          this.txScheduled = true;
          setImmediate(() => {
            this.txScheduled = false;
            this.guard(() => this.processTx());
          });
        }
        break;
      }
      if (!queue.enableNotifications()) break;
    }
    this.finish(VSOCK_TX_QUEUE, queue);
    // Replies (RESPONSE, RST, CREDIT_UPDATE) go out in the same turn.
    this.processRx();
  }

  private handleTxChain(queue: SplitQueue, chain: DescriptorChain): void {
    const reader = new ChainReader(chain);
    const header = readHeader(reader);
    if (header === null) {
      this.badTxChains++;
      queue.addUsed(chain.head, 0);
      return;
    }
    let payload: Uint8Array | null = EMPTY;
    if (header.op === VsockOp.rw && header.len > 0) {
      if (header.len > VSOCK_MAX_PAYLOAD || header.len > reader.remaining) {
        payload = null;
      } else {
        // A copy: the guest may reuse its buffer as soon as it is used.
        payload = Buffer.allocUnsafe(header.len);
        reader.readInto(payload);
      }
    }
    queue.addUsed(chain.head, 0);
    this.muxer.handleGuestPacket(header, payload);
  }

  private processRx(): void {
    const queue = this.queue(VSOCK_RX_QUEUE);
    if (!queue) return;
    for (;;) {
      while (this.muxer.hasRx()) {
        const result = queue.pop();
        if (result === null) break;
        if ('error' in result) {
          this.badRxChains++;
          queue.addUsed(result.head, 0);
          continue;
        }
        this.fillRxChain(queue, result.chain);
      }
      // Out of buffers with packets left: ask for a kick, unless buffers came meanwhile.
      if (!this.muxer.hasRx() || !queue.enableNotifications()) break;
    }
    this.finish(VSOCK_RX_QUEUE, queue);
  }

  private fillRxChain(queue: SplitQueue, chain: DescriptorChain): void {
    const room = chain.writableBytes - VSOCK_HDR_SIZE;
    const packet = room >= 0 ? this.muxer.nextRxPacket(Math.min(room, VSOCK_MAX_PAYLOAD)) : null;
    if (packet === null) {
      // Too small for a header (or for the only packet we have, data): returned empty.
      this.badRxChains++;
      queue.addUsed(chain.head, 0);
      return;
    }
    const writer = new ChainWriter(chain);
    let len = 0;
    for (const piece of packet.payload) len += piece.length;
    writeHeader(writer, { ...packet.header, len });
    for (const piece of packet.payload) writer.write(piece);
    queue.addUsed(chain.head, writer.written);
  }

  private processEvents(): void {
    if (!this.eventPending) return;
    const queue = this.queue(VSOCK_EVENT_QUEUE);
    if (!queue) return;
    for (let result = queue.pop(); result !== null; result = queue.pop()) {
      if ('error' in result) {
        queue.addUsed(result.head, 0);
        continue;
      }
      const writer = new ChainWriter(result.chain);
      if (!writer.writeU32(VSOCK_EVENT_TRANSPORT_RESET)) {
        queue.addUsed(result.chain.head, 0);
        continue;
      }
      queue.addUsed(result.chain.head, writer.written);
      this.eventPending = false;
      break;
    }
    this.finish(VSOCK_EVENT_QUEUE, queue);
  }
}

const EMPTY = new Uint8Array(0);
