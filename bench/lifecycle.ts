// `npm run bench:lifecycle`: what a user waits for, through the supervisor (the same library the
// host process and Electron run): start to BERTH-READY, stop, reset to factory, and keystroke
// echo through run/debug-shell.sock. The peer for start and stop is QEMU booting the same image
// with its own devices (virtio-blk on a file, no vhost-user), in the same run; rounds alternate
// berth and peer and the median is printed. One JSON line per figure (bench/json-line.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDisk, GiB } from '../core/disk/data-disk.ts';
import { measureEchoLatency } from '../core/guest/echo-latency.ts';
import { Supervisor } from '../core/supervisor/supervisor.ts';
import { bootImage, powerOff } from '../test/support/guest-vm.ts';
import { emit, median } from './json-line.ts';

const ROUNDS = Number(process.env.BERTH_BENCH_ROUNDS ?? 3);
const ECHO_SAMPLES = 500;
const CPUS = 2;
const MEMORY_MiB = 1024;

const work = mkdtempSync(join(tmpdir(), 'berth-bench-lifecycle-'));
const supervisor = await Supervisor.open({
  home: join(work, 'home'),
  engine: { dockerConfig: join(work, 'docker-config') },
});
try {
  await supervisor.setSettings({ changes: { cpus: CPUS, memoryMiB: MEMORY_MiB }, source: 'cli' });
  // First boot formats the data disk; time the boots a user has every day.
  await supervisor.start();
  await supervisor.stop();
  const peerDisk = join(work, 'peer.img');
  new DataDisk(peerDisk).create(64 * GiB);

  const times = {
    start: [] as number[],
    peerStart: [] as number[],
    stop: [] as number[],
    peerStop: [] as number[],
  };
  for (let round = 0; round < ROUNDS; round++) {
    let began = performance.now();
    await supervisor.start();
    times.start.push(performance.now() - began);
    await supervisor.stop();
    times.stop.push(supervisor.status().lastStop!.durationMs);

    const peer = await bootImage({
      disk: { kind: 'qemu', path: peerDisk },
      serialLog: join(work, 'peer-serial.log'),
      cpus: CPUS,
      memoryMiB: MEMORY_MiB,
    });
    times.peerStart.push(peer.readyMs);
    began = performance.now();
    await powerOff(peer.vm);
    times.peerStop.push(performance.now() - began);
  }
  const start = median(times.start);
  const peerStart = median(times.peerStart);
  emit({
    bench: 'start_to_ready',
    unit: 'ms',
    berth: start,
    peer: peerStart,
    ratio: start / peerStart,
  });
  const stop = median(times.stop);
  const peerStop = median(times.peerStop);
  emit({ bench: 'stop', unit: 'ms', berth: stop, peer: peerStop, ratio: stop / peerStop });

  await supervisor.start();
  const echo = await echoThroughDebugShell(supervisor.paths.debugShellSocket);
  emit({ bench: 'console_echo_p50', unit: 'ms', berth: echo.p50Ms, peer: null, ratio: null });
  emit({ bench: 'console_echo_p99', unit: 'ms', berth: echo.p99Ms, peer: null, ratio: null });

  // Reset from running: stop, back up, new disk, default settings, boot (and format) again.
  const began = performance.now();
  await supervisor.reset({ confirm: true });
  const reset = performance.now() - began;
  emit({ bench: 'reset', unit: 'ms', berth: reset, peer: null, ratio: null });
  emit({
    bench: 'reset_beyond_one_boot',
    unit: 'ms',
    berth: reset - start,
    peer: null,
    ratio: null,
  });
} finally {
  await supervisor.close();
  rmSync(work, { recursive: true, force: true });
}

async function echoThroughDebugShell(path: string) {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
  try {
    return await measureEchoLatency(socket, ECHO_SAMPLES);
  } finally {
    socket.destroy();
  }
}
