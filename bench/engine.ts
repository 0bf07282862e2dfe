// `npm run bench:engine`: what a docker user waits for. Through the supervisor (the library the
// host process and Electron run): VM start to engine ready, measured from BERTH-READY (the start
// resolving) to the engine's first answer on run/docker.sock; `docker run --rm` of a tiny image
// with the host's docker client (p50 of 10); and guest-to-host TCP throughput through our network
// device against QEMU's user networking (bench/network.ts). One JSON line per figure.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPaths } from '../core/paths.ts';
import { Supervisor } from '../core/supervisor/supervisor.ts';
import { busyboxRootfs } from '../test/support/docker-cli.ts';
import { emit, median } from './json-line.ts';
import { measureNetwork } from './network.ts';

const ROUNDS = Number(process.env.BERTH_BENCH_ROUNDS ?? 3);
const RUNS = 10;
const ENGINE_DEADLINE_MS = 120_000;
const POLL_MS = 100;

/** Runs a command to completion (stdin from `input`); rejects with its stderr if it fails. */
function run(cmd: string, args: string[], input?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, DOCKER_CLI_HINTS: 'false' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input ?? '');
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr}`)),
    );
  });
}

/** GET /_ping on the host's docker.sock: true once the engine in the guest answers. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function waitForEngine(socketPath: string): Promise<void> {
  const started = performance.now();
  while (!(await ping(socketPath))) {
    if (performance.now() - started > ENGINE_DEADLINE_MS)
      throw new Error(`bench: the engine did not answer within ${ENGINE_DEADLINE_MS / 1000} s`);
    // Every refused attempt costs the booting guest a vsock connection and a fork; polling
    // faster than this measurably slowed the engine's own start (20 ms: +0.7 s).
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const work = mkdtempSync(join(tmpdir(), 'berth-bench-engine-'));
const home = join(work, 'home');
const dockerSock = dataPaths(home).dockerSocket;
// The `berth` docker context goes into the bench's own DOCKER_CONFIG, not the user's.
const supervisor = await Supervisor.open({
  home,
  engine: { dockerConfig: join(work, 'docker-config') },
});
try {
  // The first boot formats the data disk and the engine creates its state: not the daily case.
  await supervisor.start();
  await waitForEngine(dockerSock);
  await supervisor.stop();

  const afterReady: number[] = [];
  const fromStart: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const began = performance.now();
    await supervisor.start();
    const ready = performance.now();
    await waitForEngine(dockerSock);
    const engine = performance.now();
    afterReady.push(engine - ready);
    fromStart.push(engine - began);
    if (round < ROUNDS - 1) await supervisor.stop();
  }
  emit({
    bench: 'engine_ready_after_berth_ready',
    unit: 'ms',
    berth: median(afterReady),
    peer: null,
    ratio: null,
  });
  emit({
    bench: 'vm_start_to_engine_ready',
    unit: 'ms',
    berth: median(fromStart),
    peer: null,
    ratio: null,
  });

  // The docker client runs asynchronously: run/docker.sock is served by this very process.
  const docker = (args: string[], input?: Buffer) =>
    run('docker', ['-H', `unix://${dockerSock}`, ...args], input);
  const rootfs = busyboxRootfs();
  await docker(
    ['import', '-', 'berth-bench/busybox:1'],
    execFileSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 64 << 20 }),
  );
  rmSync(rootfs, { recursive: true, force: true });
  await docker(['run', '--rm', 'berth-bench/busybox:1', 'echo', 'hello']); // warm: the first run sets up more
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const began = performance.now();
    await docker(['run', '--rm', 'berth-bench/busybox:1', 'echo', 'hello']);
    runs.push(performance.now() - began);
  }
  emit({ bench: 'docker_run_rm_p50', unit: 'ms', berth: median(runs), peer: null, ratio: null });
  await supervisor.stop();
} finally {
  await supervisor.close();
  rmSync(work, { recursive: true, force: true });
}

// Throughput boots its own VMs (ours and the peer's), one at a time.
for (const line of await measureNetwork()) emit(line);
