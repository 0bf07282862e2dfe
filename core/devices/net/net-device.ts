// virtio-net (virtio 1.2, 5.1): Ethernet frames between the guest and a network stack on the
// host (passt, through a FramePort). Queue 0 is rx (frames to the guest), queue 1 tx; there is
// no control queue (over vhost-user QEMU keeps it) and one queue pair.
//
// Negotiated on top of the ring features: MRG_RXBUF (a 64 KiB frame spans several of Linux's
// page-sized rx buffers), MTU (the guest starts at our MTU, 65520 by default, so TCP sends 64 KiB
// segments without any offload), MAC and STATUS, and unless disabled CSUM + GUEST_CSUM: the
// device finishes the checksums of tx frames (cheaper here than in an emulated guest CPU) and
// vouches for rx frames, whose checksums passt computed.
//
// Back-pressure: while the FramePort is blocked, tx chains stay in the ring (the guest's queue
// fills and its stack backs off); while the guest has no rx buffers, frames wait in the port,
// which stops reading past its bound. Tx work is done in budgets so rx and kicks get turns.
// Nothing the guest writes throws out of notify(): a broken ring ends in needsReset().
import { QueueDevice } from '../queue-device.ts';
import {
  hasFeature,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type DeviceContext,
  type VirtioDevice,
} from '../virtio-device.ts';
import { checkMtu, DEFAULT_MTU, encodeNetConfig, parseMac } from './config.ts';
import {
  netFeatures,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_MRG_RXBUF,
} from './features.ts';
import type { FramePort } from './frame-port.ts';
import { LEGACY_NET_HDR_BYTES, NET_HDR_BYTES, VIRTIO_NET_HDR_F_DATA_VALID } from './net-header.ts';
import { RxBuffers, type RxCounters } from './rx-buffers.ts';
import { readTxFrame, type TxDrop } from './tx-frames.ts';

export const NET_RX_QUEUE = 0;
export const NET_TX_QUEUE = 1;

/** Tx chains handled per turn of the event loop before yielding. */
const TX_BUDGET = 256;

export interface VirtioNetOptions {
  /** The guest's MAC address ("52:54:00:..."), as QEMU's virtio-net-pci mac= has it. */
  mac: string;
  /** The MTU in config space (default 65520, passt's). */
  mtu?: number;
  /** Offer CSUM and GUEST_CSUM (default true). */
  checksumOffload?: boolean;
  /** Largest queue size accepted (default 1024). */
  maxQueueSize?: number;
  log?: (line: string) => void;
}

export interface VirtioNetStats {
  peer: boolean;
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  badTxChains: number;
  badRxChains: number;
  txDropped: Record<TxDrop | 'noPeer', number>;
  rxDroppedTooBig: number;
  heldRxChains: number;
  bufferedRxBytes: number;
}

export class VirtioNetDevice extends QueueDevice implements VirtioDevice {
  readonly type = VirtioDeviceType.net;
  readonly name = 'virtio-net';
  readonly queueCount = 2;
  readonly maxQueueSize: number;
  readonly features: bigint;
  readonly mac: Uint8Array;
  readonly mtu: number;

  private readonly log: (line: string) => void;
  private port: FramePort | null = null;
  private rx: RxBuffers | null = null;
  private headerBytes = NET_HDR_BYTES;
  private checksumOffload = false;
  private txScheduled = false;
  private readonly rxCounters: RxCounters = { badChains: 0, droppedTooBig: 0 };
  private readonly counters = {
    txFrames: 0,
    txBytes: 0,
    rxFrames: 0,
    rxBytes: 0,
    badTxChains: 0,
    txDropped: { short: 0, size: 0, gso: 0, checksum: 0, noPeer: 0 },
  };

  constructor(options: VirtioNetOptions) {
    super();
    this.mac = parseMac(options.mac);
    this.mtu = checkMtu(options.mtu ?? DEFAULT_MTU);
    this.maxQueueSize = options.maxQueueSize ?? 1024;
    this.features = netFeatures({ checksumOffload: options.checksumOffload !== false });
    this.log = options.log ?? (() => {});
  }

  /** Connects the network stack; frames flow once the driver is ready too. */
  attach(port: FramePort): void {
    this.port = port;
    port.onFrames = () => this.guard(() => this.processRx());
    port.onWritable = () => this.scheduleTx();
    this.guard(() => {
      this.processTx();
      this.processRx();
    });
  }

  /** Disconnects the network stack (it went away); tx frames are dropped until the next attach. */
  detach(port: FramePort): void {
    if (this.port !== port) return;
    this.port = null;
    // The guest may be waiting on a blocked port: its frames are now dropped instead.
    this.scheduleTx();
  }

  stats(): VirtioNetStats {
    return {
      peer: this.port !== null && !this.port.isClosed,
      ...this.counters,
      txDropped: { ...this.counters.txDropped },
      badRxChains: this.rxCounters.badChains,
      rxDroppedTooBig: this.rxCounters.droppedTooBig,
      heldRxChains: this.rx?.heldCount ?? 0,
      bufferedRxBytes: this.port?.bufferedBytes ?? 0,
    };
  }

  config(): Uint8Array {
    return encodeNetConfig(this.mac, true, this.mtu);
  }

  activate(context: DeviceContext): void {
    this.activateQueues(context);
    const { features } = context;
    const mergeable = hasFeature(features, VIRTIO_NET_F_MRG_RXBUF);
    this.headerBytes =
      mergeable || hasFeature(features, VIRTIO_F_VERSION_1) ? NET_HDR_BYTES : LEGACY_NET_HDR_BYTES;
    this.checksumOffload = hasFeature(features, VIRTIO_NET_F_CSUM);
    const guestCsum = hasFeature(features, VIRTIO_NET_F_GUEST_CSUM);
    this.rx = new RxBuffers(this.rxCounters, {
      headerBytes: this.headerBytes,
      mergeable,
      headerFlags: guestCsum ? VIRTIO_NET_HDR_F_DATA_VALID : 0,
    });
    this.guard(() => {
      this.processTx();
      this.processRx();
    });
  }

  notify(index: number): void {
    this.guard(() => {
      if (index === NET_TX_QUEUE) this.processTx();
      else if (index === NET_RX_QUEUE) this.processRx();
    });
  }

  reset(): void {
    this.deactivateQueues();
    // Held chains point into guest memory that may be unmapped next.
    this.rx?.clear();
    this.rx = null;
  }

  // --- Queues ---

  protected override onFailure(reason: string): void {
    this.log(`${this.name}: ${reason}`);
  }

  private scheduleTx(): void {
    if (this.txScheduled) return;
    this.txScheduled = true;
    setImmediate(() => {
      this.txScheduled = false;
      this.guard(() => this.processTx());
    });
  }

  private processTx(): void {
    const queue = this.queue(NET_TX_QUEUE);
    if (!queue) return;
    const port = this.port;
    // A blocked port calls onWritable when it drains; until then the chains wait in the ring.
    if (port?.blocked) return;
    let budget = TX_BUDGET;
    let stopped = false;
    for (;;) {
      queue.disableNotifications();
      for (let result = queue.pop(); result !== null; result = queue.pop()) {
        if ('error' in result) {
          this.counters.badTxChains++;
          queue.addUsed(result.head, 0);
        } else {
          const frame = readTxFrame(result.chain, this.headerBytes, this.checksumOffload);
          // The frame is our copy: the buffer goes back to the guest at once.
          queue.addUsed(result.chain.head, 0);
          if (typeof frame === 'string') {
            this.counters.txDropped[frame]++;
          } else if (port === null || !port.send(frame)) {
            this.counters.txDropped.noPeer++;
          } else {
            this.counters.txFrames++;
            this.counters.txBytes += frame.length - 4;
          }
        }
        if (--budget === 0 || port?.blocked) {
          stopped = true;
          break;
        }
      }
      if (stopped || !queue.enableNotifications()) break;
    }
    this.finish(NET_TX_QUEUE, queue);
    // Out of budget with the port still open: carry on after other events had a turn.
    if (budget === 0 && !port?.blocked) this.scheduleTx();
  }

  private processRx(): void {
    const queue = this.queue(NET_RX_QUEUE);
    const port = this.port;
    const rx = this.rx;
    if (!queue || !port || !rx) return;
    for (;;) {
      for (let frame = port.peek(); frame !== null; frame = port.peek()) {
        const result = rx.place(queue, frame);
        if (result === 'no-buffers') break;
        if (result === 'placed') {
          this.counters.rxFrames++;
          this.counters.rxBytes += frame.length;
        }
        port.shift();
      }
      // Frames left and no buffers: wait for a kick, unless buffers came meanwhile.
      if (port.peek() === null || !queue.enableNotifications()) break;
    }
    this.finish(NET_RX_QUEUE, queue);
  }
}
