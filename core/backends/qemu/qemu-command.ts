// The QEMU command line for the factory image. One function, so the smoke test, `npm start` and
// (later) the supervisor boot exactly the same machine.
import type { AccelChoice } from '../accel-probe.ts';

export interface QemuImage {
  kernel: string;
  initrd: string;
  /** The image's kernel command line (build/image/cmdline) plus anything the host adds. */
  cmdline: string;
}

export interface QemuVmConfig {
  image: QemuImage;
  accel: AccelChoice['accel'];
  cpus: number;
  memoryMiB: number;
  /** A raw disk image, seen by the guest as /dev/vda (QEMU's own virtio-blk for now). */
  dataDisk: string;
  /**
   * The serial console: our stdio (the parent reads and writes it; with `mux`, QEMU's Ctrl-A
   * escapes work too, for a terminal attached directly) or a log file only.
   */
  serial: { kind: 'stdio'; mux?: boolean } | { kind: 'file'; path: string };
  /**
   * The host's TSC rate in kHz (host-tsc.ts). Under TCG it goes on the kernel command line so
   * the guest cannot hang in early TSC calibration; without it TCG uses the q35 machine.
   */
  hostTscKhz?: number | null;
}

/** The machine and the kernel arguments the accelerator needs (see host-tsc.ts for why). */
function machineFor(config: QemuVmConfig): { machine: string; kernelArgs: string[] } {
  // microvm: no firmware and no legacy devices; pcie=on adds a PCIe host bridge (ECAM) for
  // virtio-pci, which our own devices use later.
  const microvm = 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on';
  if (config.accel === 'kvm') return { machine: microvm, kernelArgs: [] };
  if (config.hostTscKhz) {
    // tsc=reliable: the TCG guest's TSC is the host's, steadier than the jiffies watchdog that
    // would otherwise mark it unstable under host load.
    return { machine: microvm, kernelArgs: [`tsc_early_khz=${config.hostTscKhz}`, 'tsc=reliable'] };
  }
  return { machine: 'q35', kernelArgs: [] };
}

export function qemuArgs(config: QemuVmConfig): string[] {
  const { image, accel, cpus, memoryMiB, dataDisk, serial } = config;
  if (!Number.isInteger(cpus) || cpus < 1)
    throw new Error(`qemu: cpus must be a positive integer (got ${cpus})`);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128)
    throw new Error(`qemu: memory must be at least 128 MiB`);
  const serialBackend =
    serial.kind === 'stdio'
      ? 'stdio,id=serial0,signal=off'
      : `file,id=serial0,path=${escapeOption(serial.path)}`;
  const { machine, kernelArgs } = machineFor(config);
  return [
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-M',
    machine,
    '-accel',
    accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu',
    accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(cpus),
    '-m',
    `${memoryMiB}M`,
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    [image.cmdline, ...kernelArgs].join(' '),
    '-chardev',
    serialBackend,
    '-serial',
    'chardev:serial0',
    '-drive',
    `file=${escapeOption(dataDisk)},if=none,id=data,format=raw,cache=none,aio=threads,discard=unmap`,
    '-device',
    'virtio-blk-pci,drive=data',
    '-no-reboot',
  ];
}

/** QEMU option values escape a comma by doubling it. */
function escapeOption(value: string): string {
  return value.replaceAll(',', ',,');
}
