// A minimal vhost-user front-end for tests: it plays QEMU (and the guest behind it) against a
// real back-end process. Guest RAM is a memfd we map too, so a test can lay out rings with
// VirtqDriver, or fill them with garbage, and kick the device through a real eventfd.
import {
  type FdWatcher as FdWatcherType,
  close,
  eventfd,
  eventfdRead,
  eventfdWrite,
  FdWatcher,
  memfdCreate,
  mmap,
  recvWithFds,
  sendWithFds,
  unixConnect,
  type MappedRegion,
} from '../../core/native.ts';
import {
  FLAG_NEED_REPLY,
  HEADER_SIZE,
  Request,
  VHOST_USER_VERSION,
} from '../../core/devices/vhost-user/protocol.ts';
import type { VirtqDriver } from './virtq-driver.ts';
import { GuestRam } from './virtq-driver.ts';

/** Where "QEMU" pretends guest RAM sits in its own address space (any value works). */
const USER_BASE = 0x7f00_0000_0000n;

export class VhostUserFrontend {
  private readonly fd: number;
  private readonly watcher: FdWatcherType;
  private received = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  private closed = false;
  readonly ram: GuestRam;
  private readonly mapping: MappedRegion;
  private readonly memfd: number;
  readonly kickFd = eventfd(0);
  readonly callFd = eventfd(0);

  constructor(socketPath: string, ramBytes = 4 << 20) {
    this.fd = unixConnect(socketPath);
    this.watcher = new FdWatcher(this.fd, () => this.onReadable());
    this.memfd = memfdCreate('berth-test-ram', ramBytes);
    this.mapping = mmap(this.memfd, 0, ramBytes, true);
    this.ram = new GuestRam({ base: 0x10000, bytes: new Uint8Array(this.mapping.buffer) });
  }

  private onReadable(): void {
    for (;;) {
      const got = recvWithFds(this.fd, 65536, 4);
      if (got === null) break;
      for (const fd of got.fds) close(fd);
      if (got.data.length === 0) {
        this.closed = true;
        break;
      }
      this.received = Buffer.concat([this.received, got.data]);
    }
    this.waiting?.();
  }

  get backendClosed(): boolean {
    return this.closed;
  }

  /** Sends a message; with `expectReply`, resolves with the reply payload (deadline 5 s). */
  async call(
    request: number,
    payload: Buffer = Buffer.alloc(0),
    fds: number[] = [],
    expectReply = false,
  ): Promise<Buffer | null> {
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32LE(request, 0);
    header.writeUInt32LE(VHOST_USER_VERSION | (expectReply ? FLAG_NEED_REPLY : 0), 4);
    header.writeUInt32LE(payload.length, 8);
    sendWithFds(this.fd, Buffer.concat([header, payload]), fds);
    if (!expectReply) return null;
    const deadline = Date.now() + 5000;
    for (;;) {
      if (this.received.length >= HEADER_SIZE) {
        const size = this.received.readUInt32LE(8);
        if (this.received.length >= HEADER_SIZE + size) {
          const reply = this.received.subarray(HEADER_SIZE, HEADER_SIZE + size);
          this.received = this.received.subarray(HEADER_SIZE + size);
          return Buffer.from(reply);
        }
      }
      if (this.closed) throw new Error('the back-end closed the connection');
      if (Date.now() > deadline) throw new Error(`no reply to request ${request} within 5 s`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  async features(): Promise<bigint> {
    return (await this.call(Request.GET_FEATURES, undefined, [], true))!.readBigUInt64LE(0);
  }

  /** Negotiates, shares RAM and starts ring 0 on `driver`'s layout (the usual QEMU order). */
  async start(driver: VirtqDriver, acceptFeatures: bigint): Promise<void> {
    const u64 = (v: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    };
    const state = (index: number, num: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(index, 0);
      b.writeUInt32LE(num, 4);
      return b;
    };
    const offered = await this.features();
    await this.call(Request.SET_FEATURES, u64(offered & acceptFeatures));
    await this.call(Request.SET_OWNER);
    const table = Buffer.alloc(8 + 32);
    table.writeUInt32LE(1, 0);
    table.writeBigUInt64LE(BigInt(this.ram.base), 8);
    table.writeBigUInt64LE(BigInt(this.ram.bytes.length), 16);
    table.writeBigUInt64LE(USER_BASE, 24);
    table.writeBigUInt64LE(0n, 32);
    await this.call(Request.SET_MEM_TABLE, table, [this.memfd]);
    await this.startRing(driver, state, u64);
  }

  async startRing(
    driver: VirtqDriver,
    state = (index: number, num: number) => Buffer.from(new Uint32Array([index, num]).buffer),
    u64 = (v: bigint) => Buffer.from(new BigUint64Array([v]).buffer),
  ): Promise<void> {
    const va = (gpa: number) => USER_BASE + BigInt(gpa - this.ram.base);
    const addr = Buffer.alloc(40);
    addr.writeUInt32LE(0, 0);
    addr.writeBigUInt64LE(va(driver.layout.descTable), 8);
    addr.writeBigUInt64LE(va(driver.layout.usedRing), 16);
    addr.writeBigUInt64LE(va(driver.layout.availRing), 24);
    await this.call(Request.SET_VRING_NUM, state(0, driver.size));
    await this.call(Request.SET_VRING_ADDR, addr);
    await this.call(Request.SET_VRING_BASE, state(0, 0));
    await this.call(Request.SET_VRING_CALL, u64(0n), [this.callFd]);
    await this.call(Request.SET_VRING_KICK, u64(0n), [this.kickFd]);
    await this.call(Request.SET_VRING_ENABLE, state(0, 1));
  }

  /** GET_VRING_BASE: stops ring 0 and returns the back-end's avail position. */
  async stopRing(): Promise<number> {
    const reply = await this.call(
      Request.GET_VRING_BASE,
      Buffer.from(new Uint32Array([0, 0]).buffer),
      [],
      true,
    );
    return reply!.readUInt32LE(4);
  }

  kick(): void {
    eventfdWrite(this.kickFd, 1);
  }

  /** Forgets interrupts signalled so far. */
  drainCalls(): void {
    eventfdRead(this.callFd);
  }

  /** Waits (up to `ms`) for the device to signal the call eventfd. */
  async waitCall(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (eventfdRead(this.callFd) !== null) return true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return false;
  }

  close(): void {
    this.watcher.stop();
    close(this.fd);
    this.mapping.unmap();
    close(this.memfd);
    close(this.kickFd);
    close(this.callFd);
  }
}
