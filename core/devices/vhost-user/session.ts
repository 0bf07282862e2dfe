// One front-end connection of a vhost-user back-end: feature negotiation, the memory table, the
// rings' life cycle (NUM, ADDR, BASE, KICK, CALL, ENABLE ... GET_VRING_BASE stops a ring), and the
// device's activation once every ring the back-end serves is running. Kicks arrive on eventfds
// (watched on the event loop, never blocking a vCPU); interrupts leave through call eventfds.
import { close, eventfdRead, eventfdWrite, FdWatcher } from '../../native.ts';
import { SplitQueue } from '../queue/index.ts';
import {
  bit,
  hasFeature,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  type VirtioDevice,
} from '../virtio-device.ts';
import { VhostMemoryTable } from './memory-table.ts';
import {
  encodeConfig,
  encodeReply,
  FLAG_NEED_REPLY,
  type Message,
  ProtocolError,
  ProtocolFeature,
  readConfigRequest,
  readMemoryTable,
  readU64,
  readVringAddress,
  readVringState,
  Request,
  requestName,
  u64Payload,
  VHOST_USER_F_PROTOCOL_FEATURES,
  type VringAddress,
  VRING_INDEX_MASK,
  VRING_NOFD_MASK,
} from './protocol.ts';

const MAX_INDIRECT_ENTRIES = 1024;

export const SUPPORTED_PROTOCOL_FEATURES =
  bit(ProtocolFeature.MQ) | bit(ProtocolFeature.REPLY_ACK) | bit(ProtocolFeature.CONFIG);

class Vring {
  size = 0;
  address: VringAddress | null = null;
  base = 0;
  kickFd = -1;
  callFd = -1;
  enabled = false;
  /** A kick descriptor has been set: the ring runs (it moves data only while enabled too). */
  started = false;
  watcher: InstanceType<typeof FdWatcher> | null = null;
  queue: SplitQueue | null = null;

  closeFds(): void {
    this.watcher?.stop();
    this.watcher = null;
    if (this.kickFd >= 0) close(this.kickFd);
    if (this.callFd >= 0) close(this.callFd);
    this.kickFd = -1;
    this.callFd = -1;
  }
}

export interface SessionOptions {
  device: VirtioDevice;
  /** How many of the device's queues the back-end serves (vsock: 2; QEMU keeps the event queue). */
  vhostQueues: number;
  /**
   * Offer VHOST_USER_PROTOCOL_F_CONFIG when the device has a config space (default true).
   * False where QEMU keeps the config space itself and warns about the feature (virtio-net).
   */
  configSpace?: boolean;
  log: (line: string) => void;
}

export class VhostUserSession {
  private readonly device: VirtioDevice;
  private readonly vrings: Vring[];
  private readonly memory = new VhostMemoryTable();
  private readonly log: (line: string) => void;
  private readonly configSpace: boolean;
  private ackedFeatures = 0n;
  private protocolFeatures = 0n;
  private active = false;
  private failed: string | null = null;

  constructor(options: SessionOptions) {
    this.device = options.device;
    this.log = options.log;
    this.configSpace = options.configSpace !== false;
    this.vrings = Array.from({ length: options.vhostQueues }, () => new Vring());
  }

  /** Where each ring stands (SIGUSR2 in the server process prints it). */
  debugState(): object {
    return {
      active: this.active,
      failed: this.failed,
      rings: this.vrings.map((v) => ({
        enabled: v.enabled,
        started: v.started,
        kickFd: v.kickFd,
        callFd: v.callFd,
        queue: v.queue?.debugState() ?? null,
      })),
    };
  }

  get isActive(): boolean {
    return this.active;
  }

  private get replyAck(): boolean {
    return hasFeature(this.protocolFeatures, ProtocolFeature.REPLY_ACK);
  }

  /** Handles one message; returns the reply to send (if any). Never throws. */
  handle(message: Message): Buffer | null {
    let reply: Buffer | null = null;
    let ok = true;
    try {
      reply = this.dispatch(message);
    } catch (error) {
      ok = false;
      // Handlers take the descriptors they own out of message.fds; the rest are ours to close.
      for (const fd of message.fds.splice(0)) closeQuietly(fd);
      this.log(`${requestName(message.request)} failed: ${(error as Error).message}`);
    }
    if (reply) return reply;
    if ((message.flags & FLAG_NEED_REPLY) !== 0 && this.replyAck) {
      return encodeReply(message.request, u64Payload(ok ? 0n : 1n));
    }
    return null;
  }

  /** CONFIG only for a device that has a config space (QEMU warns about it otherwise, e.g. rng). */
  private offeredProtocolFeatures(): bigint {
    const withoutConfig = SUPPORTED_PROTOCOL_FEATURES & ~bit(ProtocolFeature.CONFIG);
    return this.configSpace && this.device.config().length > 0
      ? SUPPORTED_PROTOCOL_FEATURES
      : withoutConfig;
  }

  private vring(index: number | bigint): Vring {
    const vring = this.vrings[Number(index)];
    if (!vring)
      throw new ProtocolError(
        `ring ${index} does not exist (the device serves ${this.vrings.length})`,
      );
    return vring;
  }

  private dispatch(message: Message): Buffer | null {
    const { request } = message;
    switch (request) {
      case Request.GET_FEATURES:
        return encodeReply(
          request,
          u64Payload(this.device.features | bit(VHOST_USER_F_PROTOCOL_FEATURES)),
        );
      case Request.SET_FEATURES: {
        const features = readU64(message) & ~bit(VHOST_USER_F_PROTOCOL_FEATURES);
        const unknown = features & ~this.device.features;
        if (unknown !== 0n)
          throw new ProtocolError(`features 0x${unknown.toString(16)} were never offered`);
        this.ackedFeatures = features;
        return null;
      }
      case Request.GET_PROTOCOL_FEATURES:
        return encodeReply(request, u64Payload(this.offeredProtocolFeatures()));
      case Request.SET_PROTOCOL_FEATURES:
        this.protocolFeatures = readU64(message) & this.offeredProtocolFeatures();
        return null;
      case Request.GET_QUEUE_NUM:
        return encodeReply(request, u64Payload(BigInt(this.vrings.length)));
      case Request.SET_OWNER:
        return null;
      case Request.RESET_OWNER:
        this.deactivate();
        return null;
      case Request.SET_MEM_TABLE:
        this.setMemoryTable(message);
        return null;
      case Request.SET_VRING_NUM: {
        const { index, num } = readVringState(message);
        if (num === 0 || num > this.device.maxQueueSize || (num & (num - 1)) !== 0) {
          throw new ProtocolError(
            `ring ${index}: size ${num} is not a power of 2 up to ${this.device.maxQueueSize}`,
          );
        }
        this.vring(index).size = num;
        return null;
      }
      case Request.SET_VRING_ADDR: {
        const address = readVringAddress(message);
        this.vring(address.index).address = address;
        return null;
      }
      case Request.SET_VRING_BASE: {
        const { index, num } = readVringState(message);
        this.vring(index).base = num & 0xffff;
        return null;
      }
      case Request.GET_VRING_BASE:
        return encodeReply(request, this.stopRing(readVringState(message).index));
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR:
        this.setRingFd(message);
        return null;
      case Request.SET_VRING_ENABLE: {
        const { index, num } = readVringState(message);
        this.vring(index).enabled = num !== 0;
        this.tryActivate();
        return null;
      }
      case Request.GET_CONFIG: {
        const config = readConfigRequest(message);
        const space = this.device.config();
        const bytes = new Uint8Array(config.size);
        if (config.offset < space.length)
          bytes.set(space.subarray(config.offset, config.offset + config.size));
        return encodeReply(request, encodeConfig(config, bytes));
      }
      case Request.SET_CONFIG: {
        const config = readConfigRequest(message);
        this.device.writeConfig?.(config.offset, config.data);
        return null;
      }
      case Request.SET_BACKEND_REQ_FD:
      case Request.SET_LOG_FD:
        // We offer neither back-end requests nor dirty logging; the descriptor is not needed.
        for (const fd of message.fds.splice(0)) close(fd);
        return null;
      default:
        throw new ProtocolError(`${requestName(request)} is not supported`);
    }
  }

  private setMemoryTable(message: Message): void {
    const regions = readMemoryTable(message);
    const fds = message.fds.splice(0); // replace() closes them whatever happens
    const wasActive = this.active;
    // Rings keep their position across a new table (memory hot-plug); their queues are rebuilt.
    if (wasActive) this.pauseQueues();
    this.memory.replace(regions, fds);
    if (wasActive) this.tryActivate();
  }

  private setRingFd(message: Message): void {
    const value = readU64(message);
    const vring = this.vring(value & VRING_INDEX_MASK);
    const fds = message.fds.splice(0);
    const fd = (value & VRING_NOFD_MASK) === 0n ? fds[0] : undefined;
    for (const extra of fds.slice(fd === undefined ? 0 : 1)) close(extra);
    if (message.request === Request.SET_VRING_ERR) {
      if (fd !== undefined) close(fd);
      return;
    }
    if (message.request === Request.SET_VRING_CALL) {
      if (vring.callFd >= 0) close(vring.callFd);
      vring.callFd = fd ?? -1;
      return;
    }
    const index = this.vrings.indexOf(vring);
    vring.watcher?.stop();
    if (vring.kickFd >= 0) close(vring.kickFd);
    vring.kickFd = fd ?? -1;
    vring.started = true;
    if (fd !== undefined) {
      vring.watcher = new FdWatcher(fd, () => this.onKick(index));
    }
    this.tryActivate();
  }

  private onKick(index: number): void {
    const vring = this.vrings[index]!;
    if (vring.kickFd < 0) return;
    eventfdRead(vring.kickFd);
    if (this.active && vring.enabled && !this.failed) this.device.notify(index);
  }

  /** Stops a ring (GET_VRING_BASE) and answers with where the device got to. */
  private stopRing(index: number): Buffer {
    const vring = this.vring(index);
    const next = vring.queue?.nextAvail ?? vring.base;
    if (this.active) this.deactivate();
    vring.watcher?.stop();
    vring.watcher = null;
    if (vring.kickFd >= 0) close(vring.kickFd);
    vring.kickFd = -1;
    vring.started = false;
    vring.base = next;
    const state = Buffer.alloc(8);
    state.writeUInt32LE(index, 0);
    state.writeUInt32LE(next, 4);
    return state;
  }

  private tryActivate(): void {
    if (this.active || this.failed || this.memory.regionCount === 0) return;
    if (!this.vrings.every((v) => v.started && v.enabled && v.size > 0 && v.address)) return;
    const eventIdx = hasFeature(this.ackedFeatures, VIRTIO_F_EVENT_IDX);
    const queues: SplitQueue[] = [];
    for (const [index, vring] of this.vrings.entries()) {
      const a = vring.address!;
      const descTable = this.memory.translate(a.descUser);
      const availRing = this.memory.translate(a.availUser);
      const usedRing = this.memory.translate(a.usedUser);
      if (descTable === null || availRing === null || usedRing === null) {
        this.log(
          `ring ${index}: its addresses are outside the shared memory; the device stays stopped`,
        );
        return;
      }
      const layout = { size: vring.size, descTable, availRing, usedRing };
      const queue = new SplitQueue(this.memory.memory, layout, {
        eventIdx,
        indirectDesc: hasFeature(this.ackedFeatures, VIRTIO_F_INDIRECT_DESC),
        // Linux sizes indirect tables by the device's segment limit (virtio-blk seg_max), which
        // may exceed a small queue's size; the walk stays bounded either way.
        maxIndirectEntries: Math.max(vring.size, MAX_INDIRECT_ENTRIES),
      });
      queue.nextAvail = vring.base;
      // The used index lives in guest memory; after a stop it equals the avail position we returned.
      const usedIdx = this.memory.memory.view(layout.usedRing + 2, 2);
      queue.nextUsed = usedIdx ? usedIdx.getUint16(0, true) : vring.base;
      vring.queue = queue;
      queues.push(queue);
    }
    const all: (SplitQueue | null)[] = Array.from(
      { length: this.device.queueCount },
      (_, i) => queues[i] ?? null,
    );
    this.device.activate({
      memory: this.memory.memory,
      queues: all,
      features: this.ackedFeatures,
      interrupt: (index) => {
        const fd = this.vrings[index]?.callFd ?? -1;
        if (fd >= 0) eventfdWrite(fd, 1);
      },
      needsReset: (reason) => {
        this.failed = reason;
        this.log(`${this.device.name} needs a reset and stops: ${reason}`);
      },
    });
    this.active = true;
    this.log(
      `${this.device.name} active: ${this.vrings.length} ring(s), event index ${eventIdx ? 'on' : 'off'}`,
    );
    // Buffers may have been queued before the rings started: look once.
    for (let i = 0; i < this.vrings.length; i++) this.device.notify(i);
  }

  /** Keeps ring positions (for a new memory table) but drops the device's view of memory. */
  private pauseQueues(): void {
    for (const vring of this.vrings) {
      if (vring.queue) vring.base = vring.queue.nextAvail;
    }
    this.deactivate();
  }

  private deactivate(): void {
    if (this.active) this.device.reset();
    this.active = false;
    this.failed = null;
    for (const vring of this.vrings) vring.queue = null;
  }

  /** The front-end went away: stop the device and release every descriptor and mapping. */
  close(): void {
    this.deactivate();
    for (const vring of this.vrings) vring.closeFds();
    this.memory.clear();
  }
}

function closeQuietly(fd: number): void {
  try {
    close(fd);
  } catch {
    // Already closed by the handler that failed.
  }
}
