// One vsock stream connection between a guest socket and a host Unix socket: its state machine
// (5.10.6.4-5.10.6.6), its credit accounting in both directions, and the host socket it owns.
// The muxer routes guest packets here (handleGuestPacket) and asks for packets to put in rx
// buffers (nextPacket); everything else is driven by the host socket's events.
//
// Flow control, host -> guest: we may have at most peer_buf_alloc - (tx_cnt - peer_fwd_cnt)
// bytes in flight to the guest. Host data waits in `pending` (bounded: the socket is paused once
// it holds RX_HIGH_WATER bytes, or as much as the guest's credit, or is at 0 credit) until an rx
// buffer and credit are both there; at 0 credit we send one CREDIT_REQUEST and wait for any
// guest packet that raises the credit.
//
// Flow control, guest -> host: we advertise buf_alloc and fwd_cnt (bytes the host socket has
// taken: counted in write callbacks, so bytes still queued in Node count as ours). A guest that
// sends beyond the credit we told it about is broken or hostile: RST. So at most buf_alloc bytes
// ever wait in the socket's write queue. We send CREDIT_UPDATE when asked, and unasked when the
// free space the guest knows of falls under half of buf_alloc while real space has been freed.
//
// Closing: SHUTDOWN flags from the guest are sticky. SEND -> end() our side of the host socket
// (after queued writes); RCV -> stop reading, drop pending host data; both -> once the host
// socket has taken everything, RST and forget the connection. Host EOF -> SHUTDOWN(SEND) after
// the pending data (a Unix socket cannot tell a half-close from a close: if the host is gone, the
// guest's next write fails and ends in RST); host socket closed both ways -> SHUTDOWN(RCV|SEND),
// then wait (bounded) for the guest's RST. Errors, timeouts and protocol violations -> RST. An
// RST either way ends it, and the muxer forgets the connection at once.
import type { Socket } from 'node:net';
import {
  SHUTDOWN_BOTH,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
  VSOCK_HOST_CID,
  VSOCK_MAX_PAYLOAD,
  VSOCK_TYPE_STREAM,
  VsockOp,
  type VsockHeader,
} from './packet.ts';

/** Pause the host socket once this much host data waits for the guest. */
export const RX_HIGH_WATER = 64 * 1024;
/** ...or once this many chunks wait (tiny writes must not cost unbounded bookkeeping). */
const RX_MAX_CHUNKS = 1024;

/** A packet for the guest: the header (len filled in) and its payload, in pieces. */
export interface RxPacket {
  header: VsockHeader;
  payload: readonly Uint8Array[];
}

export interface ConnectionEvents {
  /** The connection may have a packet for the guest now. */
  ready(connection: VsockConnection): void;
  /** The connection is over (its socket destroyed): forget it, and RST the guest if `rst`. */
  closed(connection: VsockConnection, rst: boolean, reason: string): void;
}

export interface ConnectionOptions {
  guestCid: number;
  localPort: number;
  peerPort: number;
  /**
   * 'host': a host client asked for the guest port (we send REQUEST, expect RESPONSE).
   * 'guest': the guest's REQUEST; `socket` is connecting to the host listener.
   */
  initiator: 'host' | 'guest';
  socket: Socket;
  /** Our receive buffer, advertised as buf_alloc. */
  bufAlloc: number;
  /** The guest's credit from its REQUEST (guest-initiated connections). */
  peerBufAlloc?: number;
  peerFwdCnt?: number;
  /** Host bytes already read (what followed a CONNECT line). */
  initialData?: Uint8Array;
  /** Limit on REQUEST -> RESPONSE (or on connecting to the host listener). */
  requestTimeoutMs: number;
  /** Limit on waiting for the guest's RST after our SHUTDOWN(RCV|SEND), or for a flush. */
  shutdownTimeoutMs: number;
  events: ConnectionEvents;
}

type State = 'connecting' | 'requesting' | 'established' | 'closed';

/** a - b for u32 counters that wrap. */
const sub32 = (a: number, b: number): number => (a - b) >>> 0;

export class VsockConnection {
  readonly localPort: number;
  readonly peerPort: number;
  readonly initiator: 'host' | 'guest';
  readonly key: string;

  private readonly guestCid: number;
  private readonly socket: Socket;
  private readonly bufAlloc: number;
  private readonly events: ConnectionEvents;
  private readonly shutdownTimeoutMs: number;
  private state: State;
  private timer: NodeJS.Timeout | null = null;

  // Packets owed to the guest.
  private needRequest = false;
  private requestSent = false;
  private needResponse = false;
  private needCreditUpdate = false;
  private creditRequestSent = false;

  // Shutdown state.
  private guestShut = 0;
  private shutSent = 0;
  private hostEof = false;
  private hostGone = false;
  private writeEnded = false;
  private reading = false;

  // Host -> guest.
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private txCnt = 0;
  private peerBufAlloc: number;
  private peerFwdCnt: number;

  // Guest -> host.
  private rxCnt = 0;
  private fwdCnt = 0;
  private lastFwdCntSent = 0;

  constructor(options: ConnectionOptions) {
    this.guestCid = options.guestCid;
    this.localPort = options.localPort;
    this.peerPort = options.peerPort;
    this.key = connectionKey(options.localPort, options.peerPort);
    this.initiator = options.initiator;
    this.socket = options.socket;
    this.bufAlloc = options.bufAlloc;
    this.events = options.events;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs;
    this.peerBufAlloc = options.peerBufAlloc ?? 0;
    this.peerFwdCnt = options.peerFwdCnt ?? 0;
    if (options.initialData && options.initialData.length > 0) {
      this.pending.push(options.initialData);
      this.pendingBytes = options.initialData.length;
    }

    const socket = this.socket;
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.onHostData(chunk));
    socket.on('end', () => this.onHostEnd());
    socket.on('close', (hadError: boolean) => this.onHostClose(hadError));
    socket.on('error', (error: Error) => this.terminate(true, `host socket: ${error.message}`));
    if (this.initiator === 'host') {
      this.state = 'requesting';
      this.needRequest = true;
      this.arm(options.requestTimeoutMs, 'the guest did not answer the REQUEST');
    } else {
      this.state = 'connecting';
      socket.once('connect', () => this.onHostConnect());
      this.arm(options.requestTimeoutMs, 'connecting to the host listener timed out');
    }
  }

  get established(): boolean {
    return this.state === 'established';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Host bytes waiting for the guest. */
  get pendingRxBytes(): number {
    return this.pendingBytes;
  }

  /** Guest bytes not yet taken by the host socket (at most buf_alloc). */
  get pendingTxBytes(): number {
    return sub32(this.rxCnt, this.fwdCnt);
  }

  /** How many bytes the guest can take now. */
  get peerCredit(): number {
    const inFlight = sub32(this.txCnt, this.peerFwdCnt);
    return inFlight >= this.peerBufAlloc ? 0 : this.peerBufAlloc - inFlight;
  }

  /** Does the guest know of this connection (so that ending it needs an RST)? */
  private get guestKnows(): boolean {
    return this.initiator === 'guest' || this.requestSent;
  }

  // --- Guest side ---

  /** A packet from the guest for this connection (never RST: the muxer handles those). */
  handleGuestPacket(header: VsockHeader, payload: Uint8Array | null): void {
    if (this.state === 'closed') return;
    this.peerBufAlloc = header.bufAlloc;
    this.peerFwdCnt = header.fwdCnt;
    if (this.peerCredit > 0) this.creditRequestSent = false;

    switch (header.op) {
      case VsockOp.request:
        this.terminate(true, 'REQUEST on an open connection');
        return;
      case VsockOp.response:
        if (this.state === 'requesting' && this.requestSent) this.onGuestAccept();
        break;
      case VsockOp.rw:
        if (payload === null) {
          this.terminate(true, 'malformed RW packet');
          return;
        }
        if (!this.onGuestData(payload)) return;
        break;
      case VsockOp.shutdown:
        if (this.state === 'established') this.onGuestShutdown(header.flags & SHUTDOWN_BOTH);
        break;
      case VsockOp.creditRequest:
        if (this.state === 'established') this.needCreditUpdate = true;
        break;
      default:
        // CREDIT_UPDATE: the credit is taken above. Anything else: ignored.
        break;
    }
    // (A SHUTDOWN may have ended it.)
    if (this.isClosed) return;
    this.updateFlow();
    if (this.hasRxWork()) this.events.ready(this);
  }

  private onGuestAccept(): void {
    this.disarm();
    this.state = 'established';
    // The hybrid-vsock reply to the host client; not part of the stream, so not counted.
    this.socket.write(`OK ${this.localPort}\n`);
  }

  /** Forward RW data to the host socket. False if the connection was ended for it. */
  private onGuestData(payload: Uint8Array): boolean {
    if (this.state !== 'established' || (this.guestShut & SHUTDOWN_SEND) !== 0) return true;
    const len = payload.length;
    if (len === 0) return true;
    // What the guest may send: buf_alloc minus what it sent beyond the fwd_cnt we last told it.
    if (sub32(this.rxCnt, this.lastFwdCntSent) + len > this.bufAlloc) {
      this.terminate(true, `the guest sent ${len} bytes beyond its credit`);
      return false;
    }
    this.rxCnt = (this.rxCnt + len) >>> 0;
    if (this.hostGone || this.writeEnded) {
      // Nobody to give it to (we told the guest, or will, with SHUTDOWN RCV): dropped.
      this.fwdCnt = (this.fwdCnt + len) >>> 0;
      return true;
    }
    this.socket.write(payload, (error) => {
      if (!error) this.onHostFlushed(len);
    });
    return true;
  }

  private onGuestShutdown(flags: number): void {
    const added = flags & ~this.guestShut;
    this.guestShut |= flags;
    if ((added & SHUTDOWN_RCV) !== 0) {
      this.pending = [];
      this.pendingBytes = 0;
    }
    if ((added & SHUTDOWN_SEND) !== 0 && !this.writeEnded && !this.hostGone) {
      this.writeEnded = true;
      this.socket.end();
    }
    if (this.guestShut === SHUTDOWN_BOTH && added !== 0) {
      // The guest is done both ways: flush what it sent, then RST (the reply Linux waits for).
      if (this.hostGone || this.socket.writableFinished) {
        this.terminate(true, 'guest shutdown');
        return;
      }
      this.socket.once('finish', () => this.terminate(true, 'guest shutdown'));
      this.arm(this.shutdownTimeoutMs, 'flushing to the host socket timed out');
    }
  }

  // --- Host side ---

  private onHostConnect(): void {
    if (this.state !== 'connecting') return;
    this.disarm();
    this.needResponse = true;
    this.events.ready(this);
  }

  private onHostData(chunk: Buffer): void {
    if (this.state === 'closed' || (this.guestShut & SHUTDOWN_RCV) !== 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.updateFlow();
    if (this.hasRxWork()) this.events.ready(this);
  }

  private onHostEnd(): void {
    if (this.state === 'closed') return;
    this.hostEof = true;
    if (this.hasRxWork()) this.events.ready(this);
  }

  private onHostClose(hadError: boolean): void {
    if (this.state === 'closed') return;
    this.hostGone = true;
    this.hostEof = true;
    if (hadError || this.state !== 'established') {
      this.terminate(this.guestKnows, 'host socket closed');
      return;
    }
    if (this.guestShut === SHUTDOWN_BOTH) {
      this.terminate(true, 'closed both ways');
      return;
    }
    if (this.hasRxWork()) this.events.ready(this);
  }

  /** The host socket took `len` more bytes of guest data. */
  private onHostFlushed(len: number): void {
    this.fwdCnt = (this.fwdCnt + len) >>> 0;
    if (this.state !== 'established' || this.needCreditUpdate) return;
    // Tell the guest about freed space once what it knows of falls under half the buffer and
    // a worthwhile amount was freed (or everything was: never leave it waiting on nothing).
    const knownFree = this.bufAlloc - sub32(this.rxCnt, this.lastFwdCntSent);
    const freed = sub32(this.fwdCnt, this.lastFwdCntSent);
    const minFreed = Math.min(16 * 1024, this.bufAlloc >>> 3);
    if (knownFree < this.bufAlloc / 2 && (freed >= minFreed || this.fwdCnt === this.rxCnt)) {
      this.needCreditUpdate = true;
      this.events.ready(this);
    }
  }

  /** Read from the host socket only while the data has somewhere to go. */
  private updateFlow(): void {
    if (this.state === 'closed' || this.hostGone) return;
    const want =
      this.state === 'established' &&
      (this.guestShut & SHUTDOWN_RCV) === 0 &&
      !this.hostEof &&
      this.pending.length < RX_MAX_CHUNKS &&
      this.pendingBytes < Math.min(RX_HIGH_WATER, this.peerCredit);
    if (want && !this.reading) {
      this.reading = true;
      this.socket.resume();
    } else if (!want && this.reading) {
      this.reading = false;
      this.socket.pause();
    }
  }

  // --- Packets for the guest ---

  /** SHUTDOWN flags we owe the guest (sent once all pending data is out). */
  private get shutdownDue(): number {
    let flags = 0;
    if (this.hostEof) flags |= SHUTDOWN_SEND;
    if (this.hostGone) flags |= SHUTDOWN_RCV;
    return this.pendingBytes === 0 ? flags & ~this.shutSent : 0;
  }

  /** Is there a packet to send now (given an rx buffer)? */
  hasRxWork(): boolean {
    if (this.state === 'closed') return false;
    if (this.needRequest || this.needResponse) return true;
    if (this.state !== 'established') return false;
    if (this.pendingBytes > 0) {
      if (this.peerCredit > 0) return true;
      if (!this.creditRequestSent) return true;
    }
    return this.shutdownDue !== 0 || this.needCreditUpdate;
  }

  /**
   * The next packet for the guest, with at most `maxPayload` bytes of data; null if there is
   * nothing to send (or only data, and no room for any).
   */
  nextPacket(maxPayload: number): RxPacket | null {
    if (this.state === 'closed') return null;
    let op = 0;
    let flags = 0;
    let payload: Uint8Array[] = [];
    let len = 0;
    const credit = this.peerCredit;
    if (this.needRequest) {
      this.needRequest = false;
      this.requestSent = true;
      op = VsockOp.request;
    } else if (this.needResponse) {
      this.needResponse = false;
      this.state = 'established';
      op = VsockOp.response;
    } else if (this.state !== 'established') {
      return null;
    } else if (this.pendingBytes > 0 && credit > 0 && maxPayload > 0) {
      len = Math.min(maxPayload, credit, this.pendingBytes, VSOCK_MAX_PAYLOAD);
      payload = this.takePending(len);
      this.txCnt = (this.txCnt + len) >>> 0;
      op = VsockOp.rw;
    } else if (this.pendingBytes > 0 && credit === 0 && !this.creditRequestSent) {
      this.creditRequestSent = true;
      op = VsockOp.creditRequest;
    } else if (this.shutdownDue !== 0) {
      this.shutSent |= this.shutdownDue;
      flags = this.shutSent;
      op = VsockOp.shutdown;
      if (this.shutSent === SHUTDOWN_BOTH) {
        this.arm(this.shutdownTimeoutMs, 'the guest did not answer the SHUTDOWN');
      }
    } else if (this.needCreditUpdate) {
      op = VsockOp.creditUpdate;
    } else {
      return null;
    }
    // Every packet carries our credit: no separate CREDIT_UPDATE is owed after this one.
    this.needCreditUpdate = false;
    this.lastFwdCntSent = this.fwdCnt;
    if (op === VsockOp.response || op === VsockOp.rw) this.updateFlow();
    return {
      header: {
        srcCid: VSOCK_HOST_CID,
        dstCid: this.guestCid,
        srcPort: this.localPort,
        dstPort: this.peerPort,
        len,
        type: VSOCK_TYPE_STREAM,
        op,
        flags,
        bufAlloc: this.bufAlloc,
        fwdCnt: this.fwdCnt,
      },
      payload,
    };
  }

  /** Take `len` bytes (<= pendingBytes) off the front of the pending host data. */
  private takePending(len: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let left = len;
    while (left > 0) {
      const first = this.pending[0]!;
      if (first.length <= left) {
        out.push(first);
        this.pending.shift();
        left -= first.length;
      } else {
        out.push(first.subarray(0, left));
        this.pending[0] = first.subarray(left);
        left = 0;
      }
    }
    this.pendingBytes -= len;
    return out;
  }

  // --- Ending ---

  /**
   * End the connection now: destroy the host socket, drop everything, and tell the muxer
   * (which sends the guest an RST if `rst`). Idempotent.
   */
  terminate(rst: boolean, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.disarm();
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.destroy();
    this.events.closed(this, rst, reason);
  }

  private arm(ms: number, reason: string): void {
    this.disarm();
    this.timer = setTimeout(() => this.terminate(this.guestKnows, reason), ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The muxer's map key: (local port, peer port). */
export function connectionKey(localPort: number, peerPort: number): string {
  return `${localPort}:${peerPort}`;
}
