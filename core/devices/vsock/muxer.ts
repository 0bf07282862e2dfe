// VsockMuxer: the host end of every vsock connection. It maps (local port, peer port) to
// connections, turns guest REQUESTs into connections to `${udsPath}_${port}`, accepts host
// clients on `udsPath` (CONNECT <port>), answers stray packets with RST, and hands the device
// the next packet for the guest, round-robin over connections so that one busy stream cannot
// starve the others. It knows nothing of queues or guest memory: the device parses and writes
// packets, the muxer decides what they mean.
import { connect, type Socket } from 'node:net';
import { readConnectLine } from './connect-line.ts';
import { connectionKey, VsockConnection, type RxPacket } from './connection.ts';
import { VSOCK_HOST_CID, VSOCK_TYPE_STREAM, VsockOp, type VsockHeader } from './packet.ts';
import { listenUnix, type UnixListener } from './uds-listener.ts';

/** Host-initiated connections get local ports in [2^30, 2^31), round-robin (as Firecracker). */
const LOCAL_PORT_FIRST = 0x4000_0000;
const LOCAL_PORT_SPAN = 0x4000_0000;

export interface VsockMuxerOptions {
  guestCid: number;
  /** The hybrid-vsock socket path; guest connections to port P go to `${udsPath}_${P}`. */
  udsPath: string;
  /** buf_alloc we advertise per connection (bytes the host side buffers for the guest). */
  bufAlloc: number;
  /** Most connections at once, counting host clients still sending their CONNECT line. */
  maxConnections: number;
  /** A host client must send its CONNECT line within this time. */
  connectTimeoutMs: number;
  /** The guest must answer a REQUEST (and a host listener accept) within this time. */
  requestTimeoutMs: number;
  /** Bound on waiting for the guest's RST after SHUTDOWN, or for a flush to the host. */
  shutdownTimeoutMs: number;
  /** Most RSTs for unknown connections waiting for rx buffers; more are dropped. */
  maxQueuedRsts: number;
  log: (message: string) => void;
}

/** Counters and sizes, for tests and diagnostics. */
export interface VsockMuxerStats {
  /** Live connections (any state). */
  connections: number;
  /** Accepted host clients still sending their CONNECT line. */
  pendingClients: number;
  /** Allocated local ports of host-initiated connections. */
  localPorts: number;
  /** RSTs waiting for an rx buffer. */
  queuedRsts: number;
  /** Host sockets not yet closed (connections, CONNECT clients, sockets being torn down). */
  openSockets: number;
  /** Host bytes waiting for the guest (credit or rx buffers), over all connections. */
  pendingRxBytes: number;
  /** Guest bytes waiting for host sockets to take them, over all connections. */
  pendingTxBytes: number;
  /** Guest packets dropped (wrong CID, malformed, unexpected). */
  droppedPackets: number;
  /** RSTs for unknown connections dropped because the queue was full. */
  droppedRsts: number;
  /** Host clients refused (bad line, timeout, over the limit). */
  refusedClients: number;
}

export class VsockMuxer {
  /** Called when there may be a new packet for the guest (the device schedules an rx pass). */
  onRxWork: () => void = () => {};

  private readonly options: VsockMuxerOptions;
  private readonly connections = new Map<string, VsockConnection>();
  /** Connections that may have something to send, in service order. */
  private readonly ready = new Set<VsockConnection>();
  private rsts: { localPort: number; peerPort: number }[] = [];
  private readonly localPorts = new Set<number>();
  private lastLocalPort = LOCAL_PORT_FIRST + LOCAL_PORT_SPAN - 1;
  private readonly pendingClients = new Map<Socket, () => void>();
  private readonly sockets = new Set<Socket>();
  private listener: UnixListener | null = null;
  private closing = false;
  private droppedPackets = 0;
  private droppedRsts = 0;
  private refusedClients = 0;

  constructor(options: VsockMuxerOptions) {
    this.options = options;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  stats(): VsockMuxerStats {
    let pendingRxBytes = 0;
    let pendingTxBytes = 0;
    for (const connection of this.connections.values()) {
      pendingRxBytes += connection.pendingRxBytes;
      pendingTxBytes += connection.pendingTxBytes;
    }
    return {
      connections: this.connections.size,
      pendingClients: this.pendingClients.size,
      localPorts: this.localPorts.size,
      queuedRsts: this.rsts.length,
      openSockets: this.sockets.size,
      pendingRxBytes,
      pendingTxBytes,
      droppedPackets: this.droppedPackets,
      droppedRsts: this.droppedRsts,
      refusedClients: this.refusedClients,
    };
  }

  // --- Host side ---

  /** Start accepting host clients on udsPath. */
  async listen(): Promise<void> {
    if (this.listener || this.closing) throw new Error('vsock: already listening or closed');
    this.listener = await listenUnix(this.options.udsPath, (socket) => this.onHostClient(socket));
  }

  /** Stop listening, remove the socket file, close every host socket. */
  async close(): Promise<void> {
    this.closing = true;
    for (const [socket, cancel] of [...this.pendingClients]) {
      cancel();
      socket.destroy();
    }
    this.pendingClients.clear();
    this.reset();
    await this.listener?.close();
  }

  /** Drop every connection (their host sockets closed) and every queued packet. */
  reset(): void {
    for (const connection of [...this.connections.values()]) {
      connection.terminate(false, 'device reset');
    }
    this.connections.clear();
    this.ready.clear();
    this.rsts = [];
    this.localPorts.clear();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    // Errors are handled where they matter (the connection); never let one crash the process.
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
  }

  private onHostClient(socket: Socket): void {
    this.track(socket);
    if (
      this.closing ||
      this.connections.size + this.pendingClients.size >= this.options.maxConnections
    ) {
      this.refuse(socket, 'connection limit reached');
      return;
    }
    const cancel = readConnectLine(socket, this.options.connectTimeoutMs, (result) => {
      this.pendingClients.delete(socket);
      if ('error' in result) {
        this.refuse(socket, result.error);
        return;
      }
      if (this.connections.size >= this.options.maxConnections) {
        this.refuse(socket, 'connection limit reached');
        return;
      }
      const localPort = this.allocateLocalPort();
      const connection = this.newConnection({
        initiator: 'host',
        socket,
        localPort,
        peerPort: result.port,
        initialData: result.rest,
      });
      this.localPorts.add(localPort);
      this.options.log(`vsock: host client -> guest port ${result.port} (local ${localPort})`);
      this.markReady(connection);
    });
    this.pendingClients.set(socket, cancel);
  }

  private refuse(socket: Socket, reason: string): void {
    this.refusedClients++;
    this.options.log(`vsock: host client refused: ${reason}`);
    socket.destroy();
  }

  private allocateLocalPort(): number {
    // At most maxConnections ports are taken, so this ends within maxConnections + 1 steps.
    for (;;) {
      this.lastLocalPort = LOCAL_PORT_FIRST + ((this.lastLocalPort + 1) % LOCAL_PORT_SPAN);
      if (!this.localPorts.has(this.lastLocalPort)) return this.lastLocalPort;
    }
  }

  private newConnection(init: {
    initiator: 'host' | 'guest';
    socket: Socket;
    localPort: number;
    peerPort: number;
    initialData?: Uint8Array;
    peerBufAlloc?: number;
    peerFwdCnt?: number;
  }): VsockConnection {
    const { options } = this;
    const connection = new VsockConnection({
      ...init,
      guestCid: options.guestCid,
      bufAlloc: options.bufAlloc,
      requestTimeoutMs: options.requestTimeoutMs,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
      events: {
        ready: (c) => this.markReady(c),
        closed: (c, rst, reason) => this.onClosed(c, rst, reason),
      },
    });
    this.connections.set(connection.key, connection);
    return connection;
  }

  private markReady(connection: VsockConnection): void {
    if (connection.isClosed) return;
    this.ready.add(connection);
    this.onRxWork();
  }

  private onClosed(connection: VsockConnection, rst: boolean, reason: string): void {
    if (this.connections.get(connection.key) === connection) {
      this.connections.delete(connection.key);
    }
    this.ready.delete(connection);
    if (connection.initiator === 'host') this.localPorts.delete(connection.localPort);
    this.options.log(
      `vsock: connection ${connection.localPort}<->${connection.peerPort} closed: ${reason}`,
    );
    if (rst) this.queueRst(connection.localPort, connection.peerPort);
  }

  // --- Guest side ---

  /**
   * A packet the guest sent. `payload` is the RW data (empty for other ops), or null when the
   * header's len did not fit the chain or the size limit.
   */
  handleGuestPacket(header: VsockHeader, payload: Uint8Array | null): void {
    if (header.srcCid !== this.options.guestCid || header.dstCid !== VSOCK_HOST_CID) {
      // Not from our guest, or not for us: no one to answer.
      this.droppedPackets++;
      return;
    }
    const localPort = header.dstPort;
    const peerPort = header.srcPort;
    const connection = this.connections.get(connectionKey(localPort, peerPort));
    if (header.type !== VSOCK_TYPE_STREAM) {
      // Only streams exist here (no VIRTIO_VSOCK_F_SEQPACKET): whatever this was, it is over.
      this.droppedPackets++;
      if (connection) connection.terminate(header.op !== VsockOp.rst, 'packet of unknown type');
      else if (header.op !== VsockOp.rst) this.queueRst(localPort, peerPort);
      return;
    }
    if (!connection) {
      if (header.op === VsockOp.request) {
        this.onGuestRequest(header);
      } else if (header.op !== VsockOp.rst) {
        // Never answer an RST with an RST: two confused peers would bounce them forever.
        this.droppedPackets++;
        this.queueRst(localPort, peerPort);
      }
      return;
    }
    if (header.op === VsockOp.rst) {
      connection.terminate(false, 'guest RST');
      return;
    }
    if (header.op < VsockOp.request || header.op > VsockOp.creditRequest) {
      // Ignored by the connection (which still takes the credit fields).
      this.droppedPackets++;
    }
    connection.handleGuestPacket(header, payload);
  }

  private onGuestRequest(header: VsockHeader): void {
    const { dstPort, srcPort } = header;
    if (this.closing || this.connections.size >= this.options.maxConnections) {
      this.queueRst(dstPort, srcPort);
      return;
    }
    let socket: Socket;
    try {
      socket = connect({ path: `${this.options.udsPath}_${dstPort}`, allowHalfOpen: true });
    } catch {
      this.queueRst(dstPort, srcPort);
      return;
    }
    this.track(socket);
    this.newConnection({
      initiator: 'guest',
      socket,
      localPort: dstPort,
      peerPort: srcPort,
      peerBufAlloc: header.bufAlloc,
      peerFwdCnt: header.fwdCnt,
    });
  }

  private queueRst(localPort: number, peerPort: number): void {
    if (this.rsts.length >= this.options.maxQueuedRsts) {
      this.droppedRsts++;
      return;
    }
    this.rsts.push({ localPort, peerPort });
    this.onRxWork();
  }

  // --- Packets for the guest ---

  /** Is there a packet for the guest now? (Exact: then nextRxPacket(n > 0) returns one.) */
  hasRx(): boolean {
    if (this.rsts.length > 0) return true;
    for (const connection of this.ready) {
      if (connection.hasRxWork()) return true;
      this.ready.delete(connection);
    }
    return false;
  }

  /** The next packet for the guest, with at most `maxPayload` bytes of data; null if none. */
  nextRxPacket(maxPayload: number): RxPacket | null {
    const rst = this.rsts.shift();
    if (rst) {
      return {
        header: {
          srcCid: VSOCK_HOST_CID,
          dstCid: this.options.guestCid,
          srcPort: rst.localPort,
          dstPort: rst.peerPort,
          len: 0,
          type: VSOCK_TYPE_STREAM,
          op: VsockOp.rst,
          flags: 0,
          bufAlloc: 0,
          fwdCnt: 0,
        },
        payload: [],
      };
    }
    const again: VsockConnection[] = [];
    let packet: RxPacket | null = null;
    for (const connection of this.ready) {
      this.ready.delete(connection);
      if (!connection.hasRxWork()) continue;
      packet = connection.nextPacket(maxPayload);
      // Still busy (or nothing fit): to the back of the line, behind everyone now waiting.
      if (packet === null || connection.hasRxWork()) again.push(connection);
      if (packet !== null) break;
    }
    for (const connection of again) this.ready.add(connection);
    return packet;
  }
}
