// `npm run bench:devices`: our virtio devices against QEMU's own, in one VM in one run.
//
// The guest gets two disks backed by identical 1 GiB files of random data: vda is our virtio-blk
// (vhost-user, serial "berth"), vdb is QEMU's virtio-blk (serial "qemu"), both with the host page
// cache and flushes honoured. berth-blkbench (O_DIRECT, Linux AIO) measures each figure on both,
// alternating ours and the peer twice, and we print the mean. vsock has no peer: throughput both
// ways and the round trip of a 1-byte echo (p50, p99) through our device.
// Every line: {"bench", "unit", "berth", "peer", "ratio"} (ratio = berth/peer, higher is better
// for MB/s and IOPS).
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceServer } from '../core/backends/qemu/device-servers.ts';
import { connectGuestPort } from '../core/guest/hybrid-vsock.ts';
import { authorizedKeyArgument, loadOrCreateSshKey } from '../core/guest/ssh-keys.ts';
import { GuestSsh } from '../core/guest/ssh-session.ts';
import { bootImage, powerOff } from '../test/support/guest-vm.ts';
import { emit } from './json-line.ts';

const MiB = 1 << 20;
const DISK_BYTES = 1024 * MiB;
const SECONDS_PER_RUN = Number(process.env.BERTH_BENCH_SECONDS ?? 4);
const VSOCK_BYTES = 128 * MiB;
const ECHO_ROUNDS = 2000;

function makeDisk(path: string): void {
  const fd = openSync(path, 'w', 0o600);
  for (let off = 0; off < DISK_BYTES; off += 16 * MiB) writeSync(fd, randomBytes(16 * MiB));
  closeSync(fd);
}

const work = mkdtempSync(join(tmpdir(), 'berth-bench-'));
const servers: DeviceServer[] = [];
try {
  const ours = join(work, 'berth.img');
  const peer = join(work, 'qemu.img');
  makeDisk(ours);
  copyFileSync(ours, peer);
  const uds = join(work, 'v.sock');
  servers.push(
    await DeviceServer.start({
      device: 'blk',
      socket: join(work, 'blk.sock'),
      disk: ours,
      serial: 'berth',
    }),
    await DeviceServer.start({
      device: 'vsock',
      socket: join(work, 'vsock.sock'),
      guestCid: 3,
      uds,
    }),
  );
  const key = loadOrCreateSshKey(join(work, 'ssh'));
  const { vm } = await bootImage({
    disk: { kind: 'vhost-user', socket: join(work, 'blk.sock') },
    extraDisks: [{ kind: 'qemu', path: peer, serial: 'qemu' }],
    vsock: { socket: join(work, 'vsock.sock') },
    serialLog: join(work, 'serial.log'),
    kernelArgs: [authorizedKeyArgument(key)],
  });
  const ssh = await GuestSsh.connect(uds, key);
  const guest = async (command: string, timeoutMs = 120_000) => {
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(
            new Error(
              `\`${command}\` did not finish within ${timeoutMs / 1000} s\n${vm.serialTail(20)}`,
            ),
          ),
        timeoutMs,
      ).unref(),
    );
    const r = await Promise.race([ssh.exec(command), deadline]);
    if (r.code !== 0)
      throw new Error(`\`${command}\` failed (${r.code}): ${r.stderr}\n${vm.serialTail(20)}`);
    return r.stdout.toString();
  };

  // Which vdX is which, by the serial each device reports.
  const serials = await guest('for d in /sys/block/vd*; do echo "${d##*/} $(cat $d/serial)"; done');
  const device = (serial: string) => {
    const name = /^(vd\w+) (.*)$/gm;
    for (const m of serials.matchAll(name)) if (m[2]!.trim() === serial) return `/dev/${m[1]}`;
    throw new Error(`no disk with serial ${serial}: ${serials}`);
  };
  const disks = { berth: device('berth'), peer: device('qemu') };

  const blkbench = async (dev: string, mode: string, bs: number, qd: number) => {
    const out = await guest(`berth-blkbench ${dev} ${mode} ${bs} ${qd} ${SECONDS_PER_RUN}`);
    const iops = Number(/iops=([\d.]+)/.exec(out)?.[1]);
    const mbps = Number(/mbps=([\d.]+)/.exec(out)?.[1]);
    return { iops, mbps };
  };
  const figures: [string, string, number, number, 'mbps' | 'iops', string][] = [
    ['blk_seq_read_1m', 'seqread', MiB, 4, 'mbps', 'MB/s'],
    ['blk_seq_write_1m', 'seqwrite', MiB, 4, 'mbps', 'MB/s'],
    ['blk_rand_read_4k_qd1', 'randread', 4096, 1, 'iops', 'IOPS'],
    ['blk_rand_read_4k_qd32', 'randread', 4096, 32, 'iops', 'IOPS'],
  ];
  for (const [bench, mode, bs, qd, metric, unit] of figures) {
    const results = { berth: [] as number[], peer: [] as number[] };
    for (let round = 0; round < 2; round++) {
      results.berth.push((await blkbench(disks.berth, mode, bs, qd))[metric]);
      results.peer.push((await blkbench(disks.peer, mode, bs, qd))[metric]);
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const berth = mean(results.berth);
    const peerValue = mean(results.peer);
    emit({ bench, unit, berth, peer: peerValue, ratio: berth / peerValue });
  }

  // vsock, host -> guest: the guest discards what it reads.
  await guest(
    'setsid /usr/libexec/berth/berth-vsockd --port 5001 --ready-fd 3 -- /bin/sh -c "exec cat >/dev/null" ' +
      '3>/tmp/sink.ready </dev/null >/dev/null 2>&1 & ' +
      'setsid /usr/libexec/berth/berth-vsockd --port 5000 --ready-fd 3 -- /bin/cat 3>/tmp/echo.ready </dev/null >/dev/null 2>&1 & ' +
      'i=0; while [ ! -s /tmp/sink.ready ] || [ ! -s /tmp/echo.ready ]; do sleep 0.1; i=$((i+1)); [ $i -lt 100 ] || exit 1; done',
  );
  {
    const socket = await connectGuestPort(uds, 5001);
    const chunk = randomBytes(MiB);
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      const pump = () => {
        while (sent < VSOCK_BYTES) {
          sent += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      socket.on('close', () => resolve());
      socket.on('error', reject);
      pump();
    });
    const seconds = (performance.now() - started) / 1000;
    emit({
      bench: 'vsock_host_to_guest',
      unit: 'MB/s',
      berth: VSOCK_BYTES / seconds / 1e6,
      peer: null,
      ratio: null,
    });
  }

  // vsock, guest -> host: a host sink counts what the guest sends.
  {
    let received = 0;
    let started = 0;
    let done: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const sink = createServer((socket: Socket) => {
      started = performance.now();
      socket.on('data', (data: Buffer) => (received += data.length));
      socket.on('end', () => {
        socket.end();
        done();
      });
    });
    await new Promise<void>((resolve) => sink.listen(`${uds}_6001`, resolve));
    // The data comes from a file in the guest's tmpfs, made before the clock starts: a pipe from
    // /dev/zero costs more guest CPU under TCG than the transfer itself.
    await guest(`head -c ${VSOCK_BYTES} /dev/zero > /tmp/blob`);
    await guest('berth-vsock-connect 2 6001 < /tmp/blob; rm /tmp/blob');
    await finished;
    const seconds = (performance.now() - started) / 1000;
    sink.close();
    emit({
      bench: 'vsock_guest_to_host',
      unit: 'MB/s',
      berth: received / seconds / 1e6,
      peer: null,
      ratio: null,
    });
  }

  // vsock echo round trip: one byte out, the same byte back, ECHO_ROUNDS times.
  {
    const socket = await connectGuestPort(uds, 5000);
    socket.setNoDelay?.(true);
    const times: number[] = [];
    for (let i = 0; i < ECHO_ROUNDS; i++) {
      const t = performance.now();
      await new Promise<void>((resolve) => {
        socket.once('data', () => resolve());
        socket.write('x');
      });
      times.push(performance.now() - t);
    }
    socket.destroy();
    times.sort((a, b) => a - b);
    const pct = (p: number) =>
      times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!;
    emit({ bench: 'vsock_echo_rtt_p50', unit: 'ms', berth: pct(50), peer: null, ratio: null });
    emit({ bench: 'vsock_echo_rtt_p99', unit: 'ms', berth: pct(99), peer: null, ratio: null });
  }

  ssh.close();
  await powerOff(vm);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(work, { recursive: true, force: true });
}
