// The QEMU command line for the factory image. One function, so the smoke test, `npm start` and
// (later) the supervisor boot exactly the same machine.
import type { AccelChoice } from '../accel-probe.ts';

export interface QemuImage {
  kernel: string;
  initrd: string;
  /** The image's kernel command line (build/image/cmdline) plus anything the host adds. */
  cmdline: string;
}

/** Our virtio-net over vhost-user, or QEMU's virtio-net with `-netdev user`. */
export type NetConfig =
  | { kind: 'vhost-user'; socket: string; mac: string; mtu?: number }
  | { kind: 'qemu-user'; mac: string };

/** A raw file behind QEMU's own virtio-blk, or our virtio-blk served over vhost-user. */
export type DiskConfig =
  { kind: 'qemu'; path: string; serial?: string } | { kind: 'vhost-user'; socket: string };

export interface QemuVmConfig {
  image: QemuImage;
  accel: AccelChoice['accel'];
  cpus: number;
  memoryMiB: number;
  /**
   * The data disk, seen by the guest as /dev/vda: a raw file behind QEMU's own virtio-blk, or
   * our virtio-blk model served over vhost-user on a Unix socket.
   */
  disk: DiskConfig;
  /** More disks after the data disk (vdb, vdc, ...): the device benchmark's peer uses this. */
  extraDisks?: DiskConfig[];
  /** Our virtio-vsock model over vhost-user (the guest's CID is in the device's config). */
  vsock?: { socket: string };
  /** Our virtio-rng model over vhost-user. */
  rng?: { socket: string };
  /**
   * The guest's network card (virtio-net, eth0): our model over vhost-user (passt behind it),
   * or QEMU's own virtio-net with its user-mode stack (slirp: 10.0.2.0/24, gateway 10.0.2.2),
   * the benchmark's peer.
   */
  net?: NetConfig;
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
  const { image, accel, cpus, memoryMiB, serial } = config;
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
    usesVhostUser(config) ? `${machine},memory-backend=ram` : machine,
    // vhost-user back-ends map guest RAM themselves: it must be a shareable memfd.
    ...(usesVhostUser(config)
      ? ['-object', `memory-backend-memfd,id=ram,size=${memoryMiB}M,share=on`]
      : []),
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
    ...diskArgs(config.disk, 'data'),
    ...(config.extraDisks ?? []).flatMap((disk, i) => diskArgs(disk, `disk${i + 1}`)),
    ...vhostUserArgs('vsock', 'vhost-user-vsock-pci', config.vsock),
    ...vhostUserArgs('rng', 'vhost-user-rng-pci', config.rng),
    ...netArgs(config.net),
    '-no-reboot',
  ];
}

function usesVhostUser(config: QemuVmConfig): boolean {
  const disks = [config.disk, ...(config.extraDisks ?? [])];
  return (
    disks.some((d) => d.kind === 'vhost-user') ||
    config.vsock !== undefined ||
    config.rng !== undefined ||
    config.net?.kind === 'vhost-user'
  );
}

function diskArgs(disk: DiskConfig, id: string): string[] {
  if (disk.kind === 'qemu') {
    // cache=writeback with flushes honoured: the same contract as our virtio-blk (page cache,
    // fdatasync on FLUSH), so the two are compared like for like.
    const serial = disk.serial ? `,serial=${escapeOption(disk.serial)}` : '';
    return [
      '-drive',
      `file=${escapeOption(disk.path)},if=none,id=${id},format=raw,cache=writeback,aio=threads,discard=unmap`,
      '-device',
      `virtio-blk-pci,drive=${id}${serial}`,
    ];
  }
  // num-queues=1: our model serves one queue (QEMU's default would be one per vCPU).
  return vhostUserArgs(id, 'vhost-user-blk-pci', { socket: disk.socket }, ',num-queues=1');
}

function netArgs(net: NetConfig | undefined): string[] {
  if (!net) return [];
  const mac = `mac=${escapeOption(net.mac)}`;
  if (net.kind === 'qemu-user') {
    return ['-netdev', 'user,id=net0', '-device', `virtio-net-pci,netdev=net0,${mac}`];
  }
  // host_mtu: QEMU keeps virtio-net's config space; the MTU feature itself comes from our
  // back-end. The larger rings let the guest post more rx buffers (64 KiB frames) and queue more
  // tx frames while passt catches up. vectors=0 (INTx, no MSI-X): QEMU 7.2 crashes (SIGSEGV in
  // vhost_net_start -> msix_set_vector_notifiers) when the guest enables a vhost-user
  // virtio-net with MSI-X vectors under TCG.
  return [
    '-chardev',
    `socket,id=net0,path=${escapeOption(net.socket)}`,
    '-netdev',
    'vhost-user,id=net0,chardev=net0',
    '-device',
    `virtio-net-pci,netdev=net0,${mac},host_mtu=${net.mtu ?? 65520},rx_queue_size=1024,tx_queue_size=1024,vectors=0`,
  ];
}

function vhostUserArgs(
  id: string,
  device: string,
  target: { socket: string } | undefined,
  extra = '',
): string[] {
  if (!target) return [];
  return [
    '-chardev',
    `socket,id=${id},path=${escapeOption(target.socket)}`,
    '-device',
    `${device},chardev=${id}${extra}`,
  ];
}

/** QEMU option values escape a comma by doubling it. */
function escapeOption(value: string): string {
  return value.replaceAll(',', ',,');
}
