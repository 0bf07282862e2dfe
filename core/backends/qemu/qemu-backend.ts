// The qemu backend: QEMU runs the machine, and the devices are ours. It starts one vhost-user
// server per device model (virtio-blk on the data disk, virtio-vsock, virtio-rng, virtio-net with
// passt as its network stack), then QEMU with guest RAM in a shared memfd; on stop it powers the
// guest off (or kills QEMU after a deadline) and stops the device servers. Sockets live in the
// data directory's run/ (0600 in 0700).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findPasst } from '../../devices/net/passt.ts';
import { SYSTEM_IMAGE } from '../../image/manifest.ts';
import { chooseAccel, type AccelChoice } from '../accel-probe.ts';
import {
  type BackendOptions,
  type BackendPaths,
  backendPaths,
  kernelCmdline,
} from '../backend-options.ts';
import { DATA_DISK_SERIAL, GUEST_CID, GUEST_MAC, SYSTEM_DISK_SERIAL } from '../guest-devices.ts';
import { DeviceServer } from './device-servers.ts';
import { hostTscKhz } from './host-tsc.ts';
import { QemuVm } from './qemu-vm.ts';

export type QemuBackendOptions = BackendOptions;
export type QemuBackendPaths = BackendPaths;

export class QemuBackend {
  readonly accel: AccelChoice = chooseAccel();
  readonly paths: QemuBackendPaths;
  private servers: DeviceServer[] = [];
  private vmInstance: QemuVm | null = null;

  constructor(private readonly options: QemuBackendOptions) {
    this.paths = backendPaths(options.runDir);
  }

  get vm(): QemuVm | null {
    return this.vmInstance;
  }

  /** Starts the device servers and QEMU; resolves once QEMU runs (not when the guest is ready). */
  async start(): Promise<QemuVm> {
    const { runDir, log = () => {} } = this.options;
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const sockets = {
      blk: join(runDir, 'vhost-blk.sock'),
      vsock: join(runDir, 'vhost-vsock.sock'),
      rng: join(runDir, 'vhost-rng.sock'),
      system: join(runDir, 'vhost-system.sock'),
      net: join(runDir, 'vhost-net.sock'),
    };
    // The network: our virtio-net with passt behind it, when passt is installed.
    const passt = findPasst();
    if (!passt) log('networking is off: passt is not installed (apt-get install passt)');
    // The read-only system image (the container engine), when the image has one: the guest
    // finds it by its serial and mounts it under /usr.
    const systemImage = join(this.options.imageDir, SYSTEM_IMAGE);
    const hasSystemImage = existsSync(systemImage);
    try {
      this.servers = await Promise.all([
        DeviceServer.start(
          {
            device: 'blk',
            socket: sockets.blk,
            disk: this.options.dataDisk,
            serial: DATA_DISK_SERIAL,
          },
          log,
        ),
        DeviceServer.start(
          { device: 'vsock', socket: sockets.vsock, guestCid: GUEST_CID, uds: this.paths.vsock },
          log,
        ),
        DeviceServer.start({ device: 'rng', socket: sockets.rng }, log),
        ...(hasSystemImage
          ? [
              DeviceServer.start(
                {
                  device: 'blk',
                  socket: sockets.system,
                  disk: systemImage,
                  readOnly: true,
                  serial: SYSTEM_DISK_SERIAL,
                },
                log,
              ),
            ]
          : []),
        ...(passt
          ? [DeviceServer.start({ device: 'net', socket: sockets.net, mac: GUEST_MAC, passt }, log)]
          : []),
      ]);
    } catch (error) {
      await this.stopServers();
      throw error;
    }
    const { imageDir } = this.options;
    this.vmInstance = new QemuVm(
      {
        image: {
          kernel: join(imageDir, 'vmlinuz'),
          initrd: join(imageDir, 'initrd.img'),
          cmdline: kernelCmdline(this.options),
        },
        accel: this.accel.accel,
        hostTscKhz: hostTscKhz(),
        cpus: this.options.cpus,
        memoryMiB: this.options.memoryMiB,
        disk: { kind: 'vhost-user', socket: sockets.blk },
        ...(hasSystemImage ? { extraDisks: [{ kind: 'vhost-user', socket: sockets.system }] } : {}),
        vsock: { socket: sockets.vsock },
        rng: { socket: sockets.rng },
        ...(passt ? { net: { kind: 'vhost-user', socket: sockets.net, mac: GUEST_MAC } } : {}),
      },
      this.options.serialLog,
    );
    return this.vmInstance;
  }

  /** Kills QEMU at once and stops the device servers (a clean stop powers the guest off first). */
  async kill(): Promise<void> {
    this.vmInstance?.kill();
    await this.stopServers();
  }

  async stopServers(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    this.servers = [];
  }
}
