// virtio-vsock against virtio 1.2 section 5.10 and the hybrid-vsock convention: the test plays
// the guest driver (rx/tx/event queues in one GuestRam, a Linux-like socket with credit
// accounting) and real host processes (Unix sockets in a temporary directory).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  SHUTDOWN_BOTH,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
  VSOCK_HDR_SIZE as HDR,
  VsockDevice,
  VsockOp,
  decodeHeader,
  encodeHeader,
  opName,
  parseConnectLine,
  type VsockDeviceOptions,
  type VsockHeader,
} from '../../../core/devices/vsock/index.ts';
import { ChainReader, ChainWriter } from '../../../core/devices/queue/index.ts';
import { readHeader, writeHeader } from '../../../core/devices/vsock/packet.ts';
import { rateLimitedLog } from '../../../core/devices/vsock/rate-limited-log.ts';
import { GuestRam, VirtqDriver, type SubmittedChain } from '../../support/virtq-driver.ts';

const GUEST_CID = 3;
const HOST_CID = 2;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

// --- Waiting on real I/O ---

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Let the event loop run until `condition` holds (fail after `timeoutMs`). */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let spins = 0;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    // Mostly setImmediate (I/O callbacks run in between); now and then a real pause.
    if (++spins % 64 === 0) await sleep(1);
    else await tick();
  }
}

// --- The guest ---

interface Packet extends VsockHeader {
  payload: Uint8Array;
}

function header(fields: Partial<VsockHeader>): VsockHeader {
  return {
    srcCid: GUEST_CID,
    dstCid: HOST_CID,
    srcPort: 0,
    dstPort: 0,
    len: 0,
    type: 1,
    op: 0,
    flags: 0,
    bufAlloc: 0,
    fwdCnt: 0,
    ...fields,
  };
}

/** The guest driver: three queues in one RAM, packets in and out, routed to GuestSockets. */
class Guest {
  readonly ram = new GuestRam({ size: 32 << 20 });
  readonly rx: VirtqDriver;
  readonly tx: VirtqDriver;
  readonly event: VirtqDriver;
  readonly interrupts = [0, 0, 0];
  readonly resets: string[] = [];
  /** Packets that no GuestSocket claimed (REQUESTs from the host, RSTs for strays...). */
  stray: Packet[] = [];
  /** Rx buffers the device returned too short for a header. */
  emptyRx = 0;
  private readonly rxChains = new Map<number, SubmittedChain>();
  private readonly txChains = new Map<number, SubmittedChain>();
  readonly sockets = new Map<string, GuestSocket>();

  constructor(
    readonly device: VsockDevice,
    options: { eventIdx?: boolean } = {},
  ) {
    const eventIdx = options.eventIdx === true;
    this.rx = new VirtqDriver(this.ram, { size: 256, eventIdx });
    this.tx = new VirtqDriver(this.ram, { size: 256, eventIdx });
    this.event = new VirtqDriver(this.ram, { size: 4, eventIdx });
  }

  activate(): void {
    this.device.activate({
      memory: this.ram.memory,
      queues: [this.rx.createQueue(), this.tx.createQueue(), this.event.createQueue()],
      features: this.device.features,
      interrupt: (index) => this.interrupts[index]!++,
      needsReset: (reason) => this.resets.push(reason),
    });
  }

  /** Rx buffers posted and not yet used. */
  get postedRx(): number {
    return this.rxChains.size;
  }

  /** Post `count` rx buffers of `size` bytes (header included), optionally split, and kick. */
  postRx(count: number, size = HDR + 4096, split = false): void {
    for (let i = 0; i < count; i++) {
      const chain = this.rx.add({ writable: split ? [HDR, size - HDR] : [size] });
      this.rxChains.set(chain.head, chain);
    }
    this.rx.publish();
    this.device.notify(0);
  }

  /** Keep `count` rx buffers posted. */
  refillRx(count: number, size = HDR + 4096): void {
    if (this.postedRx < count) this.postRx(count - this.postedRx, size);
  }

  /** Put raw tx chains on the queue (one kick for all of them). */
  sendChains(chains: Uint8Array[][]): void {
    for (const readable of chains) {
      const chain = this.tx.add({ readable });
      this.txChains.set(chain.head, chain);
    }
    this.tx.publish();
    this.device.notify(1);
    for (const used of this.tx.takeUsed()) {
      const chain = this.txChains.get(used.id)!;
      this.txChains.delete(used.id);
      this.tx.release(chain);
    }
    assert.equal(this.txChains.size, 0, 'the device completes every tx chain at once');
  }

  send(fields: Partial<VsockHeader>, payload?: Uint8Array): void {
    const h = header({ len: payload?.length ?? 0, ...fields });
    this.sendChains([
      payload && payload.length > 0 ? [encodeHeader(h), payload] : [encodeHeader(h)],
    ]);
  }

  /** Take used rx buffers, parse them, route them to sockets (or `stray`). */
  poll(): Packet[] {
    const packets: Packet[] = [];
    for (const used of this.rx.takeUsed()) {
      const chain = this.rxChains.get(used.id)!;
      this.rxChains.delete(used.id);
      const bytes = this.rx.written(chain, used.len);
      this.rx.release(chain);
      const h = used.len >= HDR ? decodeHeader(bytes) : null;
      if (h === null) {
        this.emptyRx++;
        continue;
      }
      assert.equal(used.len, HDR + h.len, 'used length is header + payload');
      packets.push({ ...h, payload: bytes.slice(HDR, HDR + h.len) });
    }
    for (const p of packets) {
      assert.equal(p.srcCid, HOST_CID);
      assert.equal(p.dstCid, GUEST_CID);
      assert.equal(p.type, 1);
      const socket = this.sockets.get(`${p.dstPort}:${p.srcPort}`);
      if (socket) socket.onPacket(p);
      else this.stray.push(p);
    }
    return packets;
  }

  /** Wait for a stray packet matching `match` (refilling rx buffers), and take it. */
  async expectStray(match: (p: Packet) => boolean, what: string): Promise<Packet> {
    let found: Packet | undefined;
    await until(() => {
      this.refillRx(8);
      this.poll();
      found = this.stray.find(match);
      return found !== undefined;
    }, what);
    this.stray = this.stray.filter((p) => p !== found);
    return found!;
  }

  /** Answer a host-initiated REQUEST: a guest socket for it, and RESPONSE. */
  accept(request: Packet, bufAlloc = 64 * 1024): GuestSocket {
    const socket = new GuestSocket(this, request.dstPort, request.srcPort, bufAlloc);
    socket.onPacket(request);
    socket.sendControl(VsockOp.response);
    return socket;
  }

  /** connect(): REQUEST from guest port `port` to host port `hostPort`. */
  connect(port: number, hostPort: number, bufAlloc = 64 * 1024): GuestSocket {
    const socket = new GuestSocket(this, port, hostPort, bufAlloc);
    socket.sendControl(VsockOp.request);
    return socket;
  }
}

/**
 * One guest stream socket, accounting credit the way Linux does: it sends only what the host's
 * credit allows, and its "application" consumes received data when the test says so, after
 * which it sends CREDIT_UPDATE (or when the host asks).
 */
class GuestSocket {
  received: Uint8Array[] = [];
  receivedBytes = 0;
  consumed = 0;
  lastFwdSent = 0;
  txCnt = 0;
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  peerShutdown = 0;
  reset = false;
  closing = false;
  established = false;
  packets: Packet[] = [];
  creditRequests = 0;
  creditUpdates = 0;

  constructor(
    readonly guest: Guest,
    readonly port: number,
    readonly hostPort: number,
    readonly bufAlloc: number,
  ) {
    guest.sockets.set(`${port}:${hostPort}`, this);
  }

  get credit(): number {
    return this.peerBufAlloc - (this.txCnt - this.peerFwdCnt);
  }

  get data(): Buffer {
    return Buffer.concat(this.received);
  }

  onPacket(p: Packet): void {
    this.packets.push(p);
    this.peerBufAlloc = p.bufAlloc;
    this.peerFwdCnt = p.fwdCnt;
    switch (p.op) {
      case VsockOp.response:
        this.established = true;
        break;
      case VsockOp.rw:
        assert.ok(
          this.receivedBytes - this.consumed + p.len <= this.bufAlloc,
          `the host overran the guest's credit (${this.receivedBytes - this.consumed} + ${p.len})`,
        );
        this.received.push(p.payload);
        this.receivedBytes += p.len;
        break;
      case VsockOp.creditRequest:
        this.creditRequests++;
        this.sendControl(VsockOp.creditUpdate);
        break;
      case VsockOp.creditUpdate:
        this.creditUpdates++;
        break;
      case VsockOp.shutdown:
        this.peerShutdown |= p.flags;
        break;
      case VsockOp.rst:
        this.reset = true;
        this.forget();
        break;
    }
  }

  fields(op: number, extra: Partial<VsockHeader> = {}): Partial<VsockHeader> {
    this.lastFwdSent = this.consumed;
    return {
      srcPort: this.port,
      dstPort: this.hostPort,
      op,
      bufAlloc: this.bufAlloc,
      fwdCnt: this.consumed >>> 0,
      ...extra,
    };
  }

  sendControl(op: number, flags = 0): void {
    this.guest.send(this.fields(op, { flags }));
  }

  /** Send as much of `data` as the credit allows, in packets of at most `packet` bytes. */
  write(data: Uint8Array, packet = 4096): number {
    let sent = 0;
    const chains: Uint8Array[][] = [];
    while (sent < data.length && this.credit > 0) {
      const n = Math.min(packet, this.credit, data.length - sent);
      const payload = data.subarray(sent, sent + n);
      chains.push([encodeHeader(header({ ...this.fields(VsockOp.rw), len: n })), payload]);
      this.txCnt += n;
      sent += n;
    }
    if (chains.length > 0) this.guest.sendChains(chains);
    return sent;
  }

  /** The application reads everything received; tell the host when a quarter was freed. */
  consume(): void {
    this.consumed = this.receivedBytes;
    if (this.consumed - this.lastFwdSent >= this.bufAlloc / 4) {
      this.sendControl(VsockOp.creditUpdate);
    }
  }

  shutdown(flags: number): void {
    this.sendControl(VsockOp.shutdown, flags);
  }

  rst(): void {
    this.sendControl(VsockOp.rst);
    this.forget();
  }

  /** close() as Linux does it: RST if the peer already shut both ways, else SHUTDOWN both. */
  close(): void {
    this.closing = true;
    if (this.peerShutdown === SHUTDOWN_BOTH) this.rst();
    else this.shutdown(SHUTDOWN_BOTH);
  }

  forget(): void {
    this.guest.sockets.delete(`${this.port}:${this.hostPort}`);
  }
}

// --- The host ---

class HostClient {
  readonly chunks: Buffer[] = [];
  ended = false;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async connect(path: string, allowHalfOpen = false): Promise<HostClient> {
    const socket = connect({ path, allowHalfOpen });
    const client = new HostClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return client;
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.data.toString('latin1');
  }
}

/** A host service listening at `${udsPath}_${port}`: every accepted socket as a HostClient. */
class HostService {
  readonly clients: HostClient[] = [];
  readonly server: Server;

  private constructor(server: Server) {
    this.server = server;
  }

  static async listen(path: string): Promise<HostService> {
    const server = createServer({ allowHalfOpen: true });
    const service = new HostService(server);
    server.on('connection', (socket) => service.clients.push(new HostClient(socket)));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return service;
  }

  close(): Promise<void> {
    for (const client of this.clients) client.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// --- Fixtures ---

let dir = '';
let counter = 0;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-vsock-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A listening device (udsPath in the temp dir) and an activated guest. */
async function setup(
  options: Partial<VsockDeviceOptions> = {},
  guestOptions: { eventIdx?: boolean; activate?: boolean } = {},
): Promise<{ device: VsockDevice; guest: Guest; udsPath: string }> {
  const udsPath = join(dir, `v${++counter}.sock`);
  const device = new VsockDevice({ guestCid: GUEST_CID, udsPath, ...options });
  await device.listen();
  cleanups.push(() => device.close());
  const guest = new Guest(device, guestOptions);
  if (guestOptions.activate !== false) guest.activate();
  return { device, guest, udsPath };
}

function service(path: string): Promise<HostService> {
  return HostService.listen(path).then((s) => {
    cleanups.push(() => s.close());
    return s;
  });
}

/** Host client -> CONNECT -> guest REQUEST -> RESPONSE -> OK line. */
async function hostConnect(
  guest: Guest,
  udsPath: string,
  port: number,
  guestBufAlloc = 64 * 1024,
  allowHalfOpen = false,
): Promise<{ client: HostClient; socket: GuestSocket; localPort: number }> {
  const client = await HostClient.connect(udsPath, allowHalfOpen);
  cleanupSocket(client.socket);
  client.socket.write(`CONNECT ${port}\n`);
  const request = await guest.expectStray(
    (p) => p.op === VsockOp.request && p.dstPort === port,
    `REQUEST to guest port ${port}`,
  );
  const socket = guest.accept(request, guestBufAlloc);
  const okLine = `OK ${request.srcPort}\n`;
  await until(() => client.text.length >= okLine.length, 'the OK line');
  assert.equal(client.text.slice(0, okLine.length), okLine);
  client.chunks.splice(0, client.chunks.length, client.data.subarray(okLine.length));
  return { client, socket, localPort: request.srcPort };
}

/** Guest connect() to a host service at `${udsPath}_${hostPort}`. */
async function guestConnect(
  guest: Guest,
  svc: HostService,
  port: number,
  hostPort: number,
): Promise<{ socket: GuestSocket; client: HostClient }> {
  const before = svc.clients.length;
  const socket = guest.connect(port, hostPort);
  await until(() => {
    guest.refillRx(8);
    guest.poll();
    return socket.established || socket.reset;
  }, `RESPONSE from host port ${hostPort}`);
  assert.equal(socket.reset, false);
  await until(() => svc.clients.length > before, 'the host service to accept');
  return { socket, client: svc.clients[svc.clients.length - 1]! };
}

function cleanupSocket(socket: Socket): void {
  cleanups.push(() => {
    socket.destroy();
  });
}

/** Drive the guest until its socket received `n` bytes (consuming as it goes). */
async function guestReceive(guest: Guest, socket: GuestSocket, n: number): Promise<void> {
  await until(() => {
    guest.refillRx(8);
    guest.poll();
    socket.consume();
    return socket.receivedBytes >= n;
  }, `${n} bytes at the guest`);
}

// --- Tests ---

describe('packet header and CONNECT line', () => {
  test('encode / decode / ChainReader / ChainWriter agree, little-endian, 44 bytes', () => {
    const h = header({
      srcCid: 0x1_0000_0003,
      srcPort: 0xdeadbeef,
      dstPort: 1024,
      len: 7,
      op: VsockOp.rw,
      flags: 3,
      bufAlloc: 262144,
      fwdCnt: 0xffffffff,
    });
    const bytes = encodeHeader(h);
    assert.equal(bytes.length, 44);
    assert.deepEqual([...bytes.subarray(0, 8)], [3, 0, 0, 0, 1, 0, 0, 0]);
    assert.deepEqual([...bytes.subarray(30, 32)], [5, 0]);
    assert.deepEqual(decodeHeader(bytes), h);
    // Split across three buffers at awkward places.
    const reader = new ChainReader([
      bytes.subarray(0, 5),
      bytes.subarray(5, 30),
      bytes.subarray(30),
    ]);
    assert.deepEqual(readHeader(reader), h);
    assert.equal(readHeader(new ChainReader([bytes.subarray(0, 43)])), null);
    const out = [new Uint8Array(10), new Uint8Array(34)];
    assert.equal(writeHeader(new ChainWriter(out), h), true);
    assert.deepEqual(Buffer.concat(out), Buffer.from(bytes));
    assert.equal(writeHeader(new ChainWriter([new Uint8Array(43)]), h), false);
    assert.equal(opName(VsockOp.creditRequest), 'CREDIT_REQUEST');
    assert.equal(opName(42), 'op 42');
  });

  test('CONNECT lines', () => {
    assert.equal(parseConnectLine('CONNECT 1234'), 1234);
    assert.equal(parseConnectLine('connect 0'), 0);
    assert.equal(parseConnectLine('CONNECT 4294967295\r'), 0xffffffff);
    for (const bad of [
      'CONNECT 4294967296',
      'CONNECT',
      'CONNECT ',
      'CONNECT -1',
      'CONNECT 1.5',
      'CONNECT 12 34',
      ' CONNECT 1',
      'CONNECT  1',
      'HELLO 1',
      'CONNECT 0x10',
      'CONNECT 12345678901',
    ]) {
      assert.equal(parseConnectLine(bad), null, bad);
    }
  });
});

describe('device basics', () => {
  test('logging is rate-limited, and says how much it dropped', () => {
    const lines: string[] = [];
    let now = 0;
    const log = rateLimitedLog(
      (m) => lines.push(m),
      3,
      1000,
      () => now,
    );
    for (let i = 0; i < 10; i++) log(`line ${i}`);
    assert.deepEqual(lines, ['line 0', 'line 1', 'line 2']);
    now = 1000;
    log('later');
    assert.deepEqual(lines.slice(3), ['vsock: 7 more log lines suppressed', 'later']);
  });

  test('log lines for connections that come and go', async () => {
    const lines: string[] = [];
    const { guest, udsPath } = await setup({ log: (m) => lines.push(m) });
    const { socket } = await hostConnect(guest, udsPath, 8);
    socket.rst();
    assert.ok(lines.some((l) => /host client -> guest port 8/.test(l)));
    assert.ok(lines.some((l) => /closed: guest RST/.test(l)));
  });

  test('type, queues, features, config = guest CID (u64 LE); bad options refused', () => {
    const device = new VsockDevice({ guestCid: 0x1234_5678n, udsPath: '/nonexistent/v.sock' });
    assert.equal(device.type, 19);
    assert.equal(device.queueCount, 3);
    assert.equal(device.features, (1n << 32n) | (1n << 29n) | (1n << 28n));
    assert.deepEqual([...device.config()], [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]);
    assert.throws(() => new VsockDevice({ guestCid: 2, udsPath: 'x' }), /CID/);
    assert.throws(() => new VsockDevice({ guestCid: 0xffffffff, udsPath: 'x' }), /CID/);
    assert.throws(() => new VsockDevice({ guestCid: 3, udsPath: 'x', bufAlloc: 0 }), /bufAlloc/);
  });

  test('the socket file is 0600, a stale one is replaced, a live one or a file is not', async () => {
    const { device, udsPath } = await setup();
    assert.equal((await stat(udsPath)).mode & 0o777, 0o600);
    assert.ok((await lstat(udsPath)).isSocket());
    await device.close();
    await assert.rejects(lstat(udsPath), { code: 'ENOENT' }, 'close() removes the socket file');

    // A socket file left by a process that died.
    const stale = join(dir, 'stale.sock');
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok((await lstat(stale)).isSocket());
    const d2 = new VsockDevice({ guestCid: 3, udsPath: stale });
    await d2.listen();
    assert.equal((await stat(stale)).mode & 0o777, 0o600);
    const client = await HostClient.connect(stale);
    client.socket.destroy();

    // Something live there: refused, and left alone.
    const d3 = new VsockDevice({ guestCid: 3, udsPath: stale });
    await assert.rejects(d3.listen(), /in use/);
    await d2.close();
    await assert.rejects(lstat(stale), { code: 'ENOENT' });

    const file = join(dir, 'not-a-socket');
    await writeFile(file, 'precious');
    await assert.rejects(new VsockDevice({ guestCid: 3, udsPath: file }).listen(), /not a socket/);
    assert.equal((await stat(file)).size, 8);
  });
});

describe('host-initiated connections', () => {
  test('CONNECT -> REQUEST -> RESPONSE -> OK, then bytes both ways', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket, localPort } = await hostConnect(guest, udsPath, 1234);
    assert.ok(localPort >= 2 ** 30 && localPort < 2 ** 31, `ephemeral port ${localPort}`);
    const request = socket.packets[0]!;
    assert.equal(request.op, VsockOp.request);
    assert.equal(request.bufAlloc, 256 * 1024);
    assert.equal(device.connectionCount, 1);

    client.socket.write('ping from host');
    await guestReceive(guest, socket, 14);
    assert.equal(socket.data.toString(), 'ping from host');

    assert.equal(socket.write(text('pong from guest')), 15);
    await until(() => client.text === 'pong from guest', 'guest data at the host');
  });

  test('bytes written right after the CONNECT line are not lost', async () => {
    const { guest, udsPath } = await setup();
    const client = await HostClient.connect(udsPath);
    cleanupSocket(client.socket);
    client.socket.write('CONNECT 77\nearly bytes');
    const request = await guest.expectStray((p) => p.op === VsockOp.request, 'REQUEST');
    const socket = guest.accept(request);
    await guestReceive(guest, socket, 11);
    assert.equal(socket.data.toString(), 'early bytes');
    await until(() => client.text === `OK ${request.srcPort}\n`, 'the OK line');
  });

  test('1 MiB each way through small rx buffers, with credit stalls on both sides', async () => {
    // The device buffers at most 32 KiB for the host; the guest gives 8 KiB of credit and has
    // 16 rx buffers of 1 KiB: both sides run out of credit over and over.
    const { device, guest, udsPath } = await setup({ bufAlloc: 32 * 1024 });
    const { client, socket } = await hostConnect(guest, udsPath, 5000, 8 * 1024);
    const down = randomBytes(1 << 20);
    const up = randomBytes(1 << 20);
    client.socket.write(down);

    let sent = 0;
    await until(
      () => {
        guest.refillRx(16, HDR + 1024);
        guest.poll();
        socket.consume();
        if (sent < up.length) sent += socket.write(up.subarray(sent), 3000);
        return socket.receivedBytes === down.length && client.data.length === up.length;
      },
      '1 MiB each way',
      30_000,
    );
    assert.equal(sha256(socket.data), sha256(down));
    assert.equal(sha256(client.data), sha256(up));
    assert.ok(socket.creditRequests > 0, 'the device asked for credit when it ran out');
    assert.ok(socket.creditUpdates > 0, 'the device sent CREDIT_UPDATEs as the host read');
    const rws = socket.packets.filter((p) => p.op === VsockOp.rw);
    assert.ok(rws.length >= 1000, 'mostly 1 KiB packets');
    assert.ok(guest.interrupts[0]! > 0 && guest.interrupts[1]! > 0);
    assert.equal(device.stats().badRxChains, 0);
  });

  test('host data waits for rx buffers, then flows (header in its own descriptor)', async () => {
    const { guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 9);
    const data = randomBytes(100_000);
    client.socket.write(data);
    await sleep(50);
    guest.poll();
    assert.equal(guest.postedRx, 0, 'every buffer was used');
    const before = socket.receivedBytes;
    assert.ok(before < data.length);
    await until(() => {
      if (guest.postedRx === 0) guest.postRx(4, HDR + 2048, true);
      guest.poll();
      socket.consume();
      return socket.receivedBytes === data.length;
    }, 'the rest of the data');
    assert.equal(sha256(socket.data), sha256(data));
  });

  test('the guest refuses (RST): the client is closed and nothing is left', async () => {
    const { device, guest, udsPath } = await setup();
    const client = await HostClient.connect(udsPath);
    client.socket.write('CONNECT 4000\n');
    const request = await guest.expectStray((p) => p.op === VsockOp.request, 'REQUEST');
    guest.send({ op: VsockOp.rst, srcPort: request.dstPort, dstPort: request.srcPort });
    await until(() => client.closed, 'the client to be closed');
    assert.equal(client.text, '');
    assert.equal(device.connectionCount, 0);
    assert.equal(device.stats().localPorts, 0);
  });

  test('the guest does not answer: client closed after the timeout, guest gets RST', async () => {
    const { device, guest, udsPath } = await setup({ requestTimeoutMs: 100 });
    const client = await HostClient.connect(udsPath);
    client.socket.write('CONNECT 4001\n');
    const request = await guest.expectStray((p) => p.op === VsockOp.request, 'REQUEST');
    await until(() => client.closed, 'the client to be closed');
    const rst = await guest.expectStray((p) => p.op === VsockOp.rst, 'RST');
    assert.equal(rst.srcPort, request.srcPort);
    assert.equal(rst.dstPort, 4001);
    assert.equal(device.connectionCount, 0);
  });

  test('bad CONNECT lines and silent clients are closed without reaching the guest', async () => {
    const { device, guest, udsPath } = await setup({ connectTimeoutMs: 150 });
    const lines = [
      'HELLO 5\n',
      'CONNECT\n',
      'CONNECT abc\n',
      'CONNECT 4294967296\n',
      'CONNECT -1\n',
      'CONNECT 12 extra\n',
      'x'.repeat(40),
      `CONNECT ${'0'.repeat(30)}1\n`,
      '', // says nothing: timeout
      'CONNECT 12', // no newline: timeout
    ];
    const clients = await Promise.all(lines.map(() => HostClient.connect(udsPath)));
    clients.forEach((c, i) => c.socket.write(lines[i]!));
    // One that hangs up half-way.
    const quitter = await HostClient.connect(udsPath);
    quitter.socket.end('CONN');
    await until(() => clients.every((c) => c.closed) && quitter.closed, 'all clients closed');
    assert.ok(clients.every((c) => c.text === ''));
    guest.postRx(4);
    await sleep(20);
    assert.deepEqual(guest.poll(), []);
    assert.equal(device.connectionCount, 0);
    const stats = device.stats();
    assert.equal(stats.refusedClients, lines.length + 1);
    assert.equal(stats.pendingClients, 0);
    await until(() => device.stats().openSockets === 0, 'no open sockets');
  });

  test('clients beyond maxConnections are refused', async () => {
    const { device, guest, udsPath } = await setup({ maxConnections: 2 });
    await hostConnect(guest, udsPath, 1);
    await hostConnect(guest, udsPath, 2);
    const third = await HostClient.connect(udsPath);
    third.socket.write('CONNECT 3\n');
    await until(() => third.closed, 'the third client to be refused');
    assert.equal(device.connectionCount, 2);
    // A guest REQUEST over the limit is refused too.
    const s = guest.connect(5, 6);
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return s.reset;
    }, 'RST for the REQUEST');
  });
});

describe('guest-initiated connections', () => {
  test('REQUEST -> connect to `${udsPath}_${port}` -> RESPONSE, then bytes both ways', async () => {
    const { device, guest, udsPath } = await setup();
    const svc = await service(`${udsPath}_5000`);
    const { socket, client } = await guestConnect(guest, svc, 40000, 5000);
    const response = socket.packets.find((p) => p.op === VsockOp.response)!;
    assert.equal(response.srcPort, 5000);
    assert.equal(response.dstPort, 40000);
    assert.equal(response.bufAlloc, 256 * 1024);
    assert.equal(device.connectionCount, 1);

    const up = randomBytes(300_000);
    let sent = 0;
    const down = randomBytes(200_000);
    client.socket.write(down);
    await until(() => {
      guest.refillRx(32);
      guest.poll();
      socket.consume();
      if (sent < up.length) sent += socket.write(up.subarray(sent), 65536);
      return client.data.length === up.length && socket.receivedBytes === down.length;
    }, 'data both ways');
    assert.equal(sha256(client.data), sha256(up));
    assert.equal(sha256(socket.data), sha256(down));
  });

  test('REQUEST to a port with no listener -> RST, nothing kept', async () => {
    const { device, guest } = await setup();
    const socket = guest.connect(40001, 6000);
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.reset;
    }, 'RST');
    const rst = socket.packets.at(-1)!;
    assert.equal(rst.op, VsockOp.rst);
    assert.equal(rst.srcPort, 6000);
    assert.equal(rst.dstPort, 40001);
    assert.equal(device.connectionCount, 0);
    await until(() => device.stats().openSockets === 0, 'no open sockets');
  });

  test('two guest sockets to the same host port are separate connections', async () => {
    const { device, guest, udsPath } = await setup();
    const svc = await service(`${udsPath}_22`);
    const a = await guestConnect(guest, svc, 1000, 22);
    const b = await guestConnect(guest, svc, 1001, 22);
    assert.equal(device.connectionCount, 2);
    a.socket.write(text('to a'));
    b.socket.write(text('to b'));
    await until(() => a.client.text === 'to a' && b.client.text === 'to b', 'both streams');
  });
});

describe('shutdown and teardown', () => {
  test('host half-close: data, then SHUTDOWN(SEND); guest answers, then closes', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 80);
    client.socket.end('last words');
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.peerShutdown !== 0;
    }, 'SHUTDOWN');
    assert.equal(socket.data.toString(), 'last words', 'data comes before the SHUTDOWN');
    assert.equal(socket.peerShutdown, SHUTDOWN_SEND);
    // The host still reads: the guest replies, then closes (SHUTDOWN both; Linux waits for RST).
    socket.write(text('reply'));
    await until(() => client.text === 'reply', 'the reply');
    socket.shutdown(SHUTDOWN_BOTH);
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.reset;
    }, 'RST after the guest shutdown');
    await until(() => client.ended && client.closed, 'the client to see EOF and close');
    assert.equal(device.connectionCount, 0);
  });

  test('guest SHUTDOWN(SEND): the host sees EOF and can still answer', async () => {
    const { device, guest, udsPath } = await setup();
    const svc = await service(`${udsPath}_81`);
    const { socket, client } = await guestConnect(guest, svc, 2000, 81);
    socket.write(text('request'));
    socket.shutdown(SHUTDOWN_SEND);
    await until(() => client.ended, 'EOF at the host');
    assert.equal(client.text, 'request');
    client.socket.end('response');
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      socket.consume();
      return socket.peerShutdown === SHUTDOWN_BOTH;
    }, 'SHUTDOWN both ways once the host socket closed');
    assert.equal(socket.data.toString(), 'response');
    // Linux answers a full SHUTDOWN with RST.
    socket.rst();
    await until(() => device.connectionCount === 0, 'the connection gone');
    await until(() => device.stats().openSockets === 0, 'no open sockets');
  });

  test('guest writes then closes: everything reaches the host before the RST', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 82);
    const data = randomBytes(200_000);
    let sent = 0;
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      sent += socket.write(data.subarray(sent), 65536);
      return sent === data.length;
    }, 'all sent');
    socket.shutdown(SHUTDOWN_BOTH);
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.reset;
    }, 'RST');
    await until(() => client.closed, 'client closed');
    assert.equal(sha256(client.data), sha256(data));
    assert.equal(device.connectionCount, 0);
  });

  test('host closes its socket: EOF (SHUTDOWN SEND) to the guest; a write then gets RST', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 83);
    client.socket.destroy();
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.peerShutdown !== 0;
    }, 'SHUTDOWN');
    // A Unix socket cannot tell a half-close from a close: the guest sees EOF...
    assert.equal(socket.peerShutdown, SHUTDOWN_SEND);
    assert.equal(device.connectionCount, 1);
    // ...and a write to the vanished host ends the connection.
    socket.write(text('anyone there?'));
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.reset;
    }, 'RST');
    assert.equal(device.connectionCount, 0);
    assert.equal(device.stats().localPorts, 0);
  });

  test('both directions shut, host socket closed: SHUTDOWN both ways, guest RST ends it', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 87, 64 * 1024, true);
    socket.shutdown(SHUTDOWN_SEND);
    await until(() => client.ended, 'EOF at the host');
    client.socket.end('bye');
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      socket.consume();
      return socket.peerShutdown === SHUTDOWN_BOTH;
    }, 'SHUTDOWN(RCV|SEND)');
    assert.equal(socket.data.toString(), 'bye');
    assert.equal(device.connectionCount, 1, 'waiting for the guest RST');
    socket.rst();
    assert.equal(device.connectionCount, 0);
    assert.equal(device.stats().localPorts, 0);
  });

  test('no RST from the guest after a full SHUTDOWN: the device RSTs after the timeout', async () => {
    const { device, guest, udsPath } = await setup({ shutdownTimeoutMs: 100 });
    const { client, socket } = await hostConnect(guest, udsPath, 84);
    socket.shutdown(SHUTDOWN_SEND);
    await until(() => client.ended, 'EOF at the host');
    client.socket.destroy();
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.peerShutdown === SHUTDOWN_BOTH || socket.reset;
    }, 'SHUTDOWN both ways');
    await until(() => {
      guest.poll();
      return socket.reset;
    }, 'RST after the timeout');
    assert.equal(device.connectionCount, 0);
  });

  test('guest RST: the host socket is closed at once', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 85);
    socket.rst();
    assert.equal(device.connectionCount, 0);
    await until(() => client.closed, 'the client closed');
  });

  test('SHUTDOWN(RCV) from the guest: host data is no longer delivered', async () => {
    const { guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 86);
    socket.shutdown(SHUTDOWN_RCV);
    client.socket.write('ignored');
    await sleep(30);
    guest.refillRx(4);
    guest.poll();
    assert.equal(socket.receivedBytes, 0);
    socket.write(text('still sending'));
    await until(() => client.text === 'still sending', 'guest data at the host');
  });

  test('200 connections opened and closed leave no state and no sockets', async () => {
    const { device, guest, udsPath } = await setup();
    const svc = await service(`${udsPath}_7000`);
    for (let round = 0; round < 10; round++) {
      const conns: { socket: GuestSocket; client: HostClient }[] = [];
      for (let i = 0; i < 10; i++) {
        conns.push(await hostConnect(guest, udsPath, 100 + i));
        conns.push(await guestConnect(guest, svc, 30000 + round * 10 + i, 7000));
      }
      assert.equal(device.connectionCount, 20);
      for (const [i, { socket, client }] of conns.entries()) {
        socket.write(text(`hello ${i}`));
        client.socket.write(`hi ${i}`);
      }
      await until(() => {
        guest.refillRx(32);
        guest.poll();
        return conns.every(({ socket, client }, i) => {
          socket.consume();
          return client.text === `hello ${i}` && socket.data.toString() === `hi ${i}`;
        });
      }, 'greetings');
      // Half close from the guest, half from the host.
      for (const [i, { socket, client }] of conns.entries()) {
        if (i % 2 === 0) socket.close();
        else client.socket.destroy();
      }
      await until(() => {
        guest.refillRx(32);
        guest.poll();
        // Like Linux: EOF seen, the application closes (SHUTDOWN both, waiting for the RST).
        for (const { socket } of conns) {
          if (!socket.reset && socket.peerShutdown !== 0 && !socket.closing) socket.close();
        }
        return device.connectionCount === 0;
      }, 'all connections closed');
    }
    await until(() => device.stats().openSockets === 0, 'no open sockets');
    guest.poll();
    const stats = device.stats();
    assert.equal(stats.connections, 0);
    assert.equal(stats.localPorts, 0);
    assert.equal(stats.pendingClients, 0);
    assert.equal(stats.queuedRsts, 0);
    assert.equal(guest.sockets.size, 0, 'every guest socket saw its RST');
  });

  test('reset() drops every connection and closes the host sockets', async () => {
    const { device, guest, udsPath } = await setup();
    const svc = await service(`${udsPath}_90`);
    const a = await hostConnect(guest, udsPath, 90);
    const b = await guestConnect(guest, svc, 3000, 90);
    device.reset();
    assert.equal(device.connectionCount, 0);
    await until(() => a.client.closed && b.client.ended, 'host sockets closed');
    // Still listening: a new driver can be activated and used.
    const fresh = new Guest(device);
    fresh.activate();
    await hostConnect(fresh, udsPath, 91);
    assert.equal(device.connectionCount, 1);
  });

  test('transportReset(): event to the guest, connections dropped', async () => {
    const { device, guest, udsPath } = await setup();
    const { client } = await hostConnect(guest, udsPath, 92);
    const event = guest.event.submit({ writable: [8] });
    device.notify(2);
    device.transportReset();
    const used = guest.event.takeUsed();
    assert.deepEqual(used, [{ id: event.head, len: 4 }]);
    assert.deepEqual([...guest.event.written(event, 4)], [0, 0, 0, 0]);
    assert.equal(guest.interrupts[2], 1);
    assert.equal(device.connectionCount, 0);
    await until(() => client.closed, 'host socket closed');
    // Without a buffer the event waits for one.
    device.transportReset();
    const later = guest.event.submit({ writable: [4] });
    device.notify(2);
    assert.deepEqual(guest.event.takeUsed(), [{ id: later.head, len: 4 }]);
  });
});

describe('an untrusted guest', () => {
  test('a guest exceeding its credit is RST', async () => {
    const { device, guest, udsPath } = await setup({ bufAlloc: 16 * 1024 });
    const svc = await service(`${udsPath}_99`);
    const { socket, client } = await guestConnect(guest, svc, 4000, 99);
    assert.equal(socket.credit, 16 * 1024);
    // Exactly the credit is fine...
    assert.equal(socket.write(new Uint8Array(16 * 1024)), 16 * 1024);
    assert.equal(device.connectionCount, 1);
    await until(() => client.data.length === 16 * 1024, 'the data at the host');
    // ...but 5 packets of 4000 bytes in one go, ignoring the (new) credit, overrun it.
    socket.peerFwdCnt = socket.txCnt;
    const chains = Array.from({ length: 5 }, () => [
      encodeHeader(header({ ...socket.fields(VsockOp.rw), len: 4000 })),
      new Uint8Array(4000),
    ]);
    guest.sendChains(chains);
    await until(() => {
      guest.refillRx(4);
      guest.poll();
      return socket.reset;
    }, 'RST');
    assert.equal(device.connectionCount, 0);
    await until(() => client.ended, 'host socket closed');
  });

  test('malformed and stray packets: dropped or RST, never thrown, nothing kept', async () => {
    const { device, guest, udsPath } = await setup();
    const { socket, client } = await hostConnect(guest, udsPath, 50);
    const rsts = (): Packet[] => guest.stray.filter((p) => p.op === VsockOp.rst);
    guest.postRx(32);

    // Too short for a header: dropped.
    guest.sendChains([[new Uint8Array(20)], [new Uint8Array(43)]]);
    assert.equal(device.stats().badTxChains, 2);
    // Not from our CID, not to the host: dropped silently.
    guest.send({ srcCid: 7, op: VsockOp.request, srcPort: 1, dstPort: 2 });
    guest.send({ dstCid: 5, op: VsockOp.request, srcPort: 1, dstPort: 2 });
    guest.send({ dstCid: 2 ** 60, op: VsockOp.request, srcPort: 1, dstPort: 2 });
    guest.poll();
    assert.equal(rsts().length, 0);
    // RST for an unknown connection: no answer (no RST ping-pong).
    guest.send({ op: VsockOp.rst, srcPort: 9, dstPort: 9 });
    guest.poll();
    assert.equal(rsts().length, 0);
    // Unknown connection, any other op: RST.
    for (const op of [
      VsockOp.rw,
      VsockOp.shutdown,
      VsockOp.response,
      VsockOp.creditUpdate,
      0,
      99,
    ]) {
      guest.send({ op, srcPort: 11, dstPort: 12 });
    }
    // RW claiming more than the chain holds, for an unknown connection: RST.
    guest.sendChains([
      [
        encodeHeader(header({ op: VsockOp.rw, len: 1000, srcPort: 11, dstPort: 12 })),
        new Uint8Array(10),
      ],
    ]);
    // Wrong type (SEQPACKET), even a REQUEST: RST.
    guest.send({ op: VsockOp.request, type: 2, srcPort: 11, dstPort: 12 });
    guest.poll();
    assert.equal(rsts().length, 8);
    assert.ok(rsts().every((p) => p.srcPort === 12 && p.dstPort === 11 && p.bufAlloc === 0));
    guest.stray = [];

    // An unknown op on a live connection is ignored; the connection lives on.
    guest.send(socket.fields(99));
    socket.write(text('still alive'));
    await until(() => client.text === 'still alive', 'data after the bad op');
    // A RW that claims more than the chain holds kills the connection (the stream is broken).
    guest.sendChains([
      [encodeHeader(header({ ...socket.fields(VsockOp.rw), len: 500 })), new Uint8Array(499)],
    ]);
    guest.poll();
    assert.ok(socket.reset);
    await until(() => client.closed, 'host socket closed');
    assert.equal(device.connectionCount, 0);

    // Same for a RW above 64 KiB, even with the bytes there.
    const again = await hostConnect(guest, udsPath, 51);
    const big = 65 * 1024;
    guest.sendChains([
      [encodeHeader(header({ ...again.socket.fields(VsockOp.rw), len: big })), new Uint8Array(big)],
    ]);
    guest.refillRx(4);
    guest.poll();
    assert.ok(again.socket.reset);
    assert.equal(device.connectionCount, 0);
    assert.deepEqual(guest.resets, []);
  });

  test('a REQUEST on an open connection resets it', async () => {
    const { device, guest, udsPath } = await setup();
    const { socket, client } = await hostConnect(guest, udsPath, 52);
    socket.sendControl(VsockOp.request);
    guest.refillRx(4);
    guest.poll();
    assert.ok(socket.reset);
    assert.equal(device.connectionCount, 0);
    await until(() => client.closed, 'host socket closed');
  });

  test('a packet of another type on an open connection resets it', async () => {
    const { device, guest, udsPath } = await setup();
    const { socket, client } = await hostConnect(guest, udsPath, 54);
    guest.send({ ...socket.fields(VsockOp.rw), type: 2 }, text('seqpacket?'));
    guest.refillRx(4);
    guest.poll();
    assert.ok(socket.reset);
    assert.equal(device.connectionCount, 0);
    await until(() => client.closed, 'host socket closed');
    assert.equal(client.text, '');
  });

  test('malformed chains and tiny rx buffers are returned, and the device carries on', async () => {
    const { device, guest, udsPath } = await setup();
    // A tx chain whose descriptor points outside guest memory.
    const bad = guest.tx.add({ readable: [8] });
    guest.tx.writeDescriptor(bad.head, { addr: 2 ** 40, len: 44, flags: 0, next: 0 });
    guest.tx.publish();
    device.notify(1);
    assert.deepEqual(guest.tx.takeUsed(), [{ id: bad.head, len: 0 }]);
    // Rx buffers too small for a header come back empty; the packet goes in the next one.
    guest.postRx(2, 20);
    guest.send({ op: VsockOp.rw, srcPort: 1, dstPort: 2 });
    guest.postRx(1);
    guest.poll();
    assert.equal(guest.emptyRx, 2);
    assert.equal(guest.stray.length, 1);
    assert.equal(device.stats().badRxChains, 2);
    assert.equal(device.stats().badTxChains, 1);
    // A REQUEST whose header straddles three descriptors, through an indirect table.
    const h = encodeHeader(header({ op: VsockOp.request, srcPort: 5, dstPort: 6 }));
    guest.tx.submit({
      readable: [h.subarray(0, 3), h.subarray(3, 40), h.subarray(40)],
      indirect: true,
    });
    device.notify(1);
    guest.tx.takeUsed();
    await guest.expectStray((p) => p.op === VsockOp.rst && p.dstPort === 5, 'RST to the REQUEST');
    await hostConnect(guest, udsPath, 53);
    assert.deepEqual(guest.resets, []);
  });

  test('a broken ring asks for a reset, once', async () => {
    const { device, guest } = await setup();
    guest.tx.availIdx = 1000;
    device.notify(1);
    device.notify(1);
    assert.equal(guest.resets.length, 1);
    assert.match(guest.resets[0]!, /virtio-vsock: queue 1/);
    device.notify(0);
    assert.equal(guest.resets.length, 1);
  });

  test('one kick, many packets: one interrupt per queue', async () => {
    const { guest } = await setup();
    guest.postRx(16);
    const base = [...guest.interrupts];
    guest.sendChains(
      Array.from({ length: 10 }, (_, i) => [
        encodeHeader(header({ op: VsockOp.rw, srcPort: 100 + i, dstPort: 1 })),
      ]),
    );
    assert.equal(guest.interrupts[1]! - base[1]!, 1);
    assert.equal(guest.interrupts[0]! - base[0]!, 1);
    assert.equal(guest.poll().length, 10);
  });

  test('random garbage does not throw, and leaves nothing behind', async () => {
    const { device, guest } = await setup({ maxQueuedRsts: 64 });
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let batch = 0; batch < 20; batch++) {
      const chains: Uint8Array[][] = [];
      for (let i = 0; i < 100; i++) {
        const h = header({
          srcCid: random(4) === 0 ? random(10) : GUEST_CID,
          dstCid: random(4) === 0 ? random(10) : HOST_CID,
          srcPort: random(8),
          dstPort: random(8),
          op: random(9),
          type: random(5) === 0 ? random(4) : 1,
          len: random(3) === 0 ? random(70_000) : random(64),
          flags: random(4),
          bufAlloc: random(2) ? 0xffffffff : random(1000),
          fwdCnt: random(1000),
        });
        const bytes = encodeHeader(h);
        const cut = random(4) === 0 ? random(60) : 44 + random(80);
        const raw = new Uint8Array(cut);
        raw.set(bytes.subarray(0, Math.min(cut, 44)));
        chains.push([raw]);
      }
      guest.sendChains(chains);
      if (batch % 3 === 0) guest.refillRx(64, HDR + random(200));
      guest.poll();
      guest.stray = [];
      await tick();
    }
    assert.deepEqual(guest.resets, []);
    assert.ok(device.stats().queuedRsts <= 64);
    // REQUESTs to ports nobody listens on all end in RST.
    await until(() => {
      guest.refillRx(64);
      guest.poll();
      guest.stray = [];
      return device.connectionCount === 0 && device.stats().queuedRsts === 0;
    }, 'everything answered');
    await until(() => device.stats().openSockets === 0, 'no open sockets');
  });
});

describe('bounded buffering', () => {
  test('a guest that does not read: the host socket is paused, little is held', async () => {
    const { device, guest, udsPath } = await setup();
    const { client, socket } = await hostConnect(guest, udsPath, 70, 1 << 20);
    guest.poll();
    // Far more than any socket buffer: the rest has to stay with the writer.
    const data = randomBytes(8 << 20);
    client.socket.write(data);
    await sleep(200);
    const held = device.stats().pendingRxBytes;
    assert.ok(held <= 128 * 1024, `the device holds ${held} bytes`);
    assert.ok(client.socket.writableLength > 4 << 20, 'the host writer is held back');
    // Then the guest reads it all, intact.
    await until(
      () => {
        guest.refillRx(64);
        guest.poll();
        socket.consume();
        return socket.receivedBytes === data.length;
      },
      'all data',
      30_000,
    );
    assert.equal(sha256(socket.data), sha256(data));
  });

  test('a host that does not read: the guest is held by credit, not RST', async () => {
    const { device, guest, udsPath } = await setup({ bufAlloc: 64 * 1024 });
    const svc = await service(`${udsPath}_71`);
    const { socket, client } = await guestConnect(guest, svc, 4100, 71);
    client.socket.pause();
    const data = randomBytes(4 << 20);
    let sent = 0;
    let stalls = 0;
    while (stalls < 50) {
      guest.refillRx(8);
      guest.poll();
      const n = socket.write(data.subarray(sent), 16 * 1024);
      sent += n;
      stalls = n === 0 ? stalls + 1 : 0;
      await sleep(1);
    }
    assert.ok(sent < data.length, 'the guest was stopped by credit');
    assert.equal(socket.reset, false);
    assert.equal(device.connectionCount, 1);
    assert.ok(device.stats().pendingTxBytes <= 64 * 1024);
    // The host reads: everything arrives.
    client.socket.resume();
    await until(
      () => {
        guest.refillRx(8);
        guest.poll();
        if (sent < data.length) sent += socket.write(data.subarray(sent), 16 * 1024);
        return client.data.length === data.length;
      },
      'all data at the host',
      30_000,
    );
    assert.equal(sha256(client.data), sha256(data));
  });
});

describe('EVENT_IDX', () => {
  test('handshake and data with event-index notification suppression', async () => {
    const { guest, udsPath } = await setup({}, { eventIdx: true });
    const { client, socket } = await hostConnect(guest, udsPath, 60);
    const data = randomBytes(50_000);
    client.socket.write(data);
    await guestReceive(guest, socket, data.length);
    assert.equal(sha256(socket.data), sha256(data));
    socket.write(text('back'));
    await until(() => client.text === 'back', 'guest data at the host');
    assert.ok(guest.interrupts[0]! > 0);
  });
});

describe('before activation', () => {
  test('a host client waits for the driver; the REQUEST goes out on activate', async () => {
    const { device, guest, udsPath } = await setup({}, { activate: false });
    const client = await HostClient.connect(udsPath);
    cleanupSocket(client.socket);
    client.socket.write('CONNECT 61\n');
    await until(() => device.connectionCount === 1, 'the connection');
    guest.activate();
    const request = await guest.expectStray((p) => p.op === VsockOp.request, 'REQUEST');
    guest.accept(request);
    await until(() => client.text === `OK ${request.srcPort}\n`, 'OK');
  });
});
