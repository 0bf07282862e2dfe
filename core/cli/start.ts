// `berth start`, for now in the foreground: boots the factory image on the qemu backend (QEMU
// with our own virtio devices over vhost-user) with the data disk of the data directory. On a
// terminal the VM's serial console is attached (Ctrl-] powers the VM off); without one, the
// console goes to logs/serial.log and Ctrl-C or SIGTERM powers the VM off. The supervisor issue
// replaces this with the background host process and the control socket.
import { mkdirSync } from 'node:fs';
import { QemuBackend } from '../backends/qemu/qemu-backend.ts';
import type { QemuVm } from '../backends/qemu/qemu-vm.ts';
import { DataDisk, GiB } from '../disk/data-disk.ts';
import { authorizedKeyArgument, loadOrCreateSshKey } from '../guest/ssh-keys.ts';
import { verifyImage } from '../image/manifest.ts';
import { buildPaths, dataPaths } from '../paths.ts';

const DEFAULT_DISK_BYTES = 64 * GiB;
const READY_DEADLINE_MS = 120_000;
const STOP_DEADLINE_MS = 15_000;
const DETACH_KEY = 0x1d; // Ctrl-]

export async function start(): Promise<number> {
  const paths = dataPaths();
  for (const dir of [paths.home, paths.disks, paths.logs, paths.run])
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  const manifest = verifyImage(buildPaths.image);
  const disk = new DataDisk(paths.dataDisk);
  if (!disk.exists()) {
    disk.create(DEFAULT_DISK_BYTES);
    console.log(
      `berth: created the data disk ${paths.dataDisk} (${DEFAULT_DISK_BYTES / GiB} GiB, sparse)`,
    );
  }
  const key = loadOrCreateSshKey(paths.ssh);
  const backend = new QemuBackend({
    imageDir: buildPaths.image,
    dataDisk: disk.path,
    runDir: paths.run,
    serialLog: paths.serialLog,
    cpus: 2,
    memoryMiB: 2048,
    kernelArgs: [authorizedKeyArgument(key)],
    log: (line) => console.error(`berth: ${line}`),
  });
  console.log(
    `berth: booting ${manifest.name} (kernel ${manifest.kernel.release}) on qemu with Berth's devices, ` +
      `${backend.accel.accel}: ${backend.accel.reason}`,
  );
  console.log(
    'berth: Electron is not available here and the dashboard comes with the desktop app issue; running headless',
  );
  const vm = await backend.start();
  try {
    const ready = await vm.waitFor(/BERTH-READY (\d+\.\d+)/, 'BERTH-READY', READY_DEADLINE_MS);
    console.log(
      `berth: VM running: READY in ${Math.round(performance.now() - vm.startedAt)} ms (guest uptime ${ready[1]} s); ` +
        `serial log ${paths.serialLog}; guest vsock ports via ${backend.paths.vsock}`,
    );
  } catch (error) {
    await backend.kill();
    throw error;
  }
  const code = await (process.stdin.isTTY ? attachConsole(vm) : waitForSignal(vm));
  await backend.stopServers();
  return code;
}

async function powerOff(vm: QemuVm): Promise<void> {
  console.log('\r\nberth: powering the VM off');
  vm.write('poweroff\n');
  try {
    await vm.waitExit(STOP_DEADLINE_MS, 'the guest powering off');
    console.log('berth: VM stopped');
  } catch (error) {
    console.error(`berth: ${(error as Error).message}`);
  }
}

function waitForSignal(vm: QemuVm): Promise<number> {
  console.log('berth: Ctrl-C or SIGTERM powers the VM off');
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => void powerOff(vm).then(() => resolve(0)));
    void vm.waitExit(2 ** 31 - 1).then(
      (exit) => resolve(exit.code ?? 1),
      () => resolve(1),
    );
  });
}

/** The serial console on this terminal, raw; Ctrl-] powers the VM off and returns. */
function attachConsole(vm: QemuVm): Promise<number> {
  console.log('berth: console attached (Ctrl-] powers the VM off)');
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  const detach = vm.subscribeSerial((text) => process.stdout.write(text));
  vm.write('\n');
  return new Promise((resolve) => {
    const finish = (code: number) => {
      detach();
      stdin.setRawMode(false);
      stdin.pause();
      resolve(code);
    };
    stdin.on('data', (data: Buffer) => {
      if (data.includes(DETACH_KEY)) return void powerOff(vm).then(() => finish(0));
      vm.write(data.toString('latin1'));
    });
    void vm.waitExit(2 ** 31 - 1).then(
      (exit) => finish(exit.code ?? 1),
      () => finish(1),
    );
  });
}
