// `berth start`, for now in the foreground: boots the factory image on QEMU with the data disk
// of the data directory. On a terminal the VM's console is attached (Ctrl-A X leaves and stops the
// VM; `poweroff` in the console stops it cleanly); without one, the serial console goes to
// logs/serial.log and Ctrl-C powers the VM off. The supervisor issue replaces this with the
// background host process and the control socket.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseAccel } from '../backends/accel-probe.ts';
import { hostTscKhz } from '../backends/qemu/host-tsc.ts';
import { qemuArgs, type QemuVmConfig } from '../backends/qemu/qemu-command.ts';
import { QEMU_BINARY, QemuVm, withParentDeathSignal } from '../backends/qemu/qemu-vm.ts';
import { DataDisk, GiB } from '../disk/data-disk.ts';
import { verifyImage } from '../image/manifest.ts';
import { buildPaths, dataPaths } from '../paths.ts';

const DEFAULT_DISK_BYTES = 64 * GiB;
const READY_DEADLINE_MS = 120_000;
const STOP_DEADLINE_MS = 15_000;

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
  const accel = chooseAccel();
  const config: Omit<QemuVmConfig, 'serial'> = {
    image: {
      kernel: join(buildPaths.image, 'vmlinuz'),
      initrd: join(buildPaths.image, 'initrd.img'),
      cmdline: readFileSync(join(buildPaths.image, 'cmdline'), 'utf8').trim(),
    },
    accel: accel.accel,
    hostTscKhz: hostTscKhz(),
    cpus: 2,
    memoryMiB: 2048,
    disk: { kind: 'qemu', path: disk.path },
  };
  console.log(
    `berth: booting ${manifest.name} (kernel ${manifest.kernel.release}) on qemu, ${accel.accel}: ${accel.reason}`,
  );
  console.log(
    'berth: Electron is not available here and the dashboard comes with the desktop app issue; running headless',
  );

  if (process.stdin.isTTY) {
    console.log(
      'berth: console attached; `poweroff` stops the VM cleanly, Ctrl-A X stops it at once',
    );
    const args = qemuArgs({ ...config, serial: { kind: 'stdio', mux: true } });
    const child = spawn(...withParentDeathSignal(QEMU_BINARY, args), { stdio: 'inherit' });
    return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  }

  const vm = new QemuVm(config, paths.serialLog);
  const ready = await vm.waitFor(/BERTH-READY (\d+\.\d+)/, 'BERTH-READY', READY_DEADLINE_MS);
  console.log(
    `berth: VM running: READY in ${Math.round(performance.now() - vm.startedAt)} ms (guest uptime ${ready[1]} s); ` +
      `serial log ${paths.serialLog}; Ctrl-C or SIGTERM powers it off`,
  );
  const stop = async () => {
    console.log('berth: powering the VM off');
    vm.write('poweroff\n');
    try {
      await vm.waitExit(STOP_DEADLINE_MS, 'the guest powering off');
      console.log('berth: VM stopped');
    } catch (error) {
      console.error(`berth: ${(error as Error).message}`);
    }
  };
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => void stop().then(() => resolve(0)));
    void vm.waitExit(2 ** 31 - 1).then(
      (exit) => resolve(exit.code ?? 1),
      () => resolve(1),
    );
  });
}
