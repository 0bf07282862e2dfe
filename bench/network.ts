// Guest-to-host TCP throughput through our virtio-net (vhost-user, passt behind it) against
// QEMU's own virtio-net with its user-mode stack (`-netdev user`, slirp), each booting the same
// image in the same run. The guest sends a file from its tmpfs with busybox `nc` to the gateway
// address (passt and slirp both map it to the host's loopback), where a host sink counts the
// bytes from the first to the last. Rounds per side are configurable; the median is reported.
//
//   npx tsx bench/network.ts        (or call measureNetwork() from another bench)
//
// One JSON line per figure (bench/json-line.ts):
//   {"bench":"guest_to_host_tcp","unit":"MB/s","berth":x,"peer":y,"ratio":x/y}
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DeviceServer } from '../core/backends/qemu/device-servers.ts';
import type { NetConfig } from '../core/backends/qemu/qemu-command.ts';
import type { QemuVm } from '../core/backends/qemu/qemu-vm.ts';
import { bootImage, powerOff, shell } from '../test/support/guest-vm.ts';
import { emit, median, type BenchLine } from './json-line.ts';

const MiB = 1 << 20;
const MAC = '52:54:00:b3:47:02';
const DHCP_DEADLINE_MS = 60_000;

export interface NetworkBenchOptions {
  /** The image to boot (default build/image). */
  imageDir?: string;
  /** Bytes the guest sends per round (default 128 MiB, BERTH_BENCH_NET_MIB). */
  bytes?: number;
  /** Rounds per side (default 3, BERTH_BENCH_ROUNDS). */
  rounds?: number;
  /** Offer CSUM/GUEST_CSUM (default true; BERTH_BENCH_NET_CSUM=0 turns it off, to compare). */
  checksumOffload?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/**
 * A host TCP server on 127.0.0.1 that times each connection from its first byte to its last
 * expected one, then closes it. (Not at the guest's FIN: passt 0.0~git20230309 sometimes fails
 * to pass on the host's FIN after the guest's, and nc would then wait.)
 */
class Sink {
  private readonly server: Server;
  private next: ((result: { bytes: number; seconds: number }) => void) | null = null;
  private expected = 0;

  constructor() {
    this.server = createServer((socket: Socket) => {
      let bytes = 0;
      let first = 0;
      let reported = false;
      const report = () => {
        if (reported) return;
        reported = true;
        const seconds = (performance.now() - first) / 1000;
        socket.end();
        this.next?.({ bytes, seconds });
        this.next = null;
      };
      socket.on('data', (data: Buffer) => {
        if (bytes === 0) first = performance.now();
        bytes += data.length;
        if (bytes >= this.expected) report();
      });
      socket.on('end', report);
      socket.on('error', () => {});
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** The next connection's result, once `bytes` arrived or it ended; rejects after `ms`. */
  result(bytes: number, ms: number): Promise<{ bytes: number; seconds: number }> {
    this.expected = bytes;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.next = null;
        reject(new Error(`the host sink got no complete transfer within ${ms / 1000} s`));
      }, ms);
      this.next = (result) => {
        clearTimeout(timer);
        resolve(result);
      };
    });
  }

  close(): void {
    this.server.close();
  }
}

/** Boots the image with `net`, sends `rounds` times `bytes` to the sink; MB/s per round. */
async function measure(
  net: NetConfig,
  options: Required<Omit<NetworkBenchOptions, 'imageDir'>> & { imageDir?: string },
  work: string,
  label: string,
): Promise<number[]> {
  const disk = join(work, `${label}.img`);
  // Neither ext4 nor blank: init leaves it alone and /var is a tmpfs.
  const fd = openSync(disk, 'w', 0o600);
  writeSync(fd, randomBytes(128 * 1024));
  closeSync(fd);
  const sink = new Sink();
  const port = await sink.listen();
  let vm: QemuVm | undefined;
  try {
    ({ vm } = await bootImage({
      disk: { kind: 'qemu', path: disk },
      net,
      serialLog: join(work, `${label}-serial.log`),
      ...(options.imageDir ? { imageDir: options.imageDir } : {}),
    }));
    await vm.waitFor(/berth-net: eth0 /, `${label}: DHCP on eth0`, DHCP_DEADLINE_MS);
    const route = await shell(vm, 'ip route show default', `${label}: the default route`);
    const gateway = /default via (\d+\.\d+\.\d+\.\d+)/.exec(route)?.[1];
    if (!gateway) throw new Error(`${label}: no default route in the guest:\n${route}`);
    // The data is made before the clock starts: reading /dev/zero costs guest CPU under TCG.
    await shell(
      vm,
      `head -c ${options.bytes} /dev/zero > /tmp/blob`,
      `${label}: making the blob`,
      300_000,
    );
    const speeds: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const done = sink.result(options.bytes, 600_000);
      // `timeout`: nc waits for the host's FIN, which passt may lose (see Sink); the figure is
      // taken at the host, so a late exit costs only wall time.
      const sent = shell(
        vm,
        `timeout 30 nc ${gateway} ${port} < /tmp/blob; true`,
        `${label}: nc to the host`,
        600_000,
      );
      const { bytes, seconds } = await done;
      await sent;
      if (bytes !== options.bytes) {
        throw new Error(`${label}: the host received ${bytes} of ${options.bytes} bytes`);
      }
      speeds.push(bytes / seconds / 1e6);
      options.log(`${label} round ${round + 1}: ${speeds.at(-1)!.toFixed(1)} MB/s`);
    }
    await powerOff(vm);
    vm = undefined;
    return speeds;
  } finally {
    vm?.kill();
    sink.close();
  }
}

/** Runs the benchmark; returns the JSON line(s) (printing them is the caller's). */
export async function measureNetwork(options: NetworkBenchOptions = {}): Promise<BenchLine[]> {
  const resolved = {
    bytes: options.bytes ?? Number(process.env.BERTH_BENCH_NET_MIB ?? 128) * MiB,
    rounds: options.rounds ?? Number(process.env.BERTH_BENCH_ROUNDS ?? 3),
    checksumOffload: options.checksumOffload ?? process.env.BERTH_BENCH_NET_CSUM !== '0',
    log: options.log ?? (() => {}),
    ...(options.imageDir ? { imageDir: options.imageDir } : {}),
  };
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-net-'));
  const socket = join(work, 'net.sock');
  let server: DeviceServer | undefined;
  try {
    server = await DeviceServer.start(
      { device: 'net', socket, mac: MAC, noChecksumOffload: !resolved.checksumOffload },
      (line) => resolved.log(line),
    );
    const berth = median(
      await measure({ kind: 'vhost-user', socket, mac: MAC }, resolved, work, 'berth'),
    );
    await server.stop();
    server = undefined;
    if (process.env.BERTH_BENCH_NET_SKIP_PEER === '1') {
      return [{ bench: 'guest_to_host_tcp', unit: 'MB/s', berth, peer: null, ratio: null }];
    }
    const peer = median(await measure({ kind: 'qemu-user', mac: MAC }, resolved, work, 'peer'));
    return [{ bench: 'guest_to_host_tcp', unit: 'MB/s', berth, peer, ratio: berth / peer }];
  } finally {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const verbose = process.env.BERTH_BENCH_VERBOSE === '1';
  const lines = await measureNetwork({
    ...(process.env.BERTH_BENCH_IMAGE ? { imageDir: process.env.BERTH_BENCH_IMAGE } : {}),
    log: (line) => {
      if (verbose) console.error(line);
    },
  });
  for (const line of lines) emit(line);
}
