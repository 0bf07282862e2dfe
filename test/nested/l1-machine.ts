// The L1 of the nested harness: QEMU TCG with `-cpu max` (which exposes svm and npt, so KVM
// works inside), the Debian cloud kernel, the L1 initramfs, and the checkout shared read-only
// over virtiofs (QEMU's virtiofsd behind vhost-user-fs-pci, guest RAM in a shared memfd).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hostTscKhz } from '../../core/backends/qemu/host-tsc.ts';
import { QEMU_BINARY, withParentDeathSignal } from '../../core/backends/qemu/qemu-vm.ts';
import { projectRoot } from '../../core/paths.ts';
import { SerialProcess } from '../../core/backends/qemu/serial-process.ts';

const VIRTIOFSD_PATHS = ['/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd'];
export const VIRTIOFS_TAG = 'berth';
const SOCKET_DEADLINE_MS = 10_000;

export interface L1Config {
  kernel: string;
  initramfs: string;
  runDir: string;
  serialLog: string;
  runs: number;
  cpus?: number;
  memoryMiB?: number;
  /** The L1 CPU model (default max: the one with svm and npt). */
  cpu?: string;
}

export function findVirtiofsd(): string {
  const found = VIRTIOFSD_PATHS.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      `nested: virtiofsd not found (looked in ${VIRTIOFSD_PATHS.join(', ')}); ` +
        'apt-get install qemu-system-common',
    );
  }
  return found;
}

export function l1Args(config: L1Config, socket: string, tscKhz: number | null): string[] {
  const memoryMiB = config.memoryMiB ?? 3072;
  // microvm with the host's TSC rate, as qemu-command.ts does under TCG (see host-tsc.ts for
  // the hang it avoids); q35 when the rate is unknown. pcie=on: virtio-pci for virtiofs.
  const machine = tscKhz ? 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on' : 'q35';
  const tscArgs = tscKhz ? [`tsc_early_khz=${tscKhz}`, 'tsc=reliable'] : [];
  return [
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-M',
    `${machine},memory-backend=ram`,
    '-object',
    `memory-backend-memfd,id=ram,size=${memoryMiB}M,share=on`,
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    config.cpu ?? 'max',
    '-smp',
    String(config.cpus ?? 2),
    '-m',
    `${memoryMiB}M`,
    '-kernel',
    config.kernel,
    '-initrd',
    config.initramfs,
    '-append',
    ['console=ttyS0', 'panic=-1', ...tscArgs, `nested.runs=${config.runs}`].join(' '),
    '-chardev',
    'stdio,id=serial0,signal=off',
    '-serial',
    'chardev:serial0',
    '-chardev',
    `socket,id=vfs,path=${socket.replaceAll(',', ',,')}`,
    '-device',
    `vhost-user-fs-pci,chardev=vfs,tag=${VIRTIOFS_TAG}`,
    '-no-reboot',
  ];
}

export class L1Machine {
  private constructor(
    readonly vm: SerialProcess,
    private readonly virtiofsd: ChildProcess,
  ) {}

  static async start(config: L1Config): Promise<L1Machine> {
    mkdirSync(config.runDir, { recursive: true, mode: 0o700 });
    const socket = join(config.runDir, 'virtiofs.sock');
    rmSync(socket, { force: true });
    // The share is mounted read-only in L1 (l1-init.sh); this virtiofsd (the C one of QEMU 7.2)
    // has no read-only option of its own.
    let virtiofsdLog = '';
    const virtiofsd = spawn(
      ...withParentDeathSignal(findVirtiofsd(), [
        `--socket-path=${socket}`,
        '-o',
        `source=${projectRoot}`,
        '-o',
        'cache=auto',
        '-o',
        'log_level=warn',
      ]),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    virtiofsd.stderr!.setEncoding('utf8');
    virtiofsd.stderr!.on('data', (text: string) => {
      virtiofsdLog = (virtiofsdLog + text).slice(-4096);
    });
    const deadline = performance.now() + SOCKET_DEADLINE_MS;
    while (!existsSync(socket)) {
      if (virtiofsd.exitCode !== null || performance.now() > deadline) {
        virtiofsd.kill('SIGKILL');
        throw new Error(`nested: virtiofsd did not create ${socket}: ${virtiofsdLog.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const vm = new SerialProcess(
      ...withParentDeathSignal(QEMU_BINARY, l1Args(config, socket, hostTscKhz())),
      { serialLog: config.serialLog },
    );
    return new L1Machine(vm, virtiofsd);
  }

  kill(): void {
    this.vm.kill();
    if (this.virtiofsd.exitCode === null) this.virtiofsd.kill('SIGKILL');
  }
}
