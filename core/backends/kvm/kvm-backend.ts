// The kvm backend: our VMM (vmm-main.ts) in a child process on /dev/kvm, booting the factory
// image with the data disk, the system image, vsock, rng and (with passt) the network, all our
// devices in that process. To its parent it is a SerialProcess, exactly as QEMU is: serial
// console on its pipes, appended to the serial log, dying with its parent (pdeathsig).
// Guest services reach the guest through the same hybrid-vsock socket as on the qemu backend.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findPasst } from '../../devices/net/passt.ts';
import { SYSTEM_IMAGE } from '../../image/manifest.ts';
import { projectRoot } from '../../paths.ts';
import {
  type BackendOptions,
  type BackendPaths,
  backendPaths,
  kernelCmdline,
} from '../backend-options.ts';
import { nodeForChildren } from '../qemu/device-servers.ts';
import { withParentDeathSignal } from '../qemu/qemu-vm.ts';
import { SerialProcess } from '../qemu/serial-process.ts';
import { type VmmSpec, vmmArgs } from './vmm-args.ts';
import { vmmCommand } from './vmm-command.ts';

export type KvmBackendOptions = BackendOptions;

/** The VMM process running the machine a VmmSpec describes. */
export class KvmVm extends SerialProcess {
  /** Which VMM entry runs: "bundle", or why tsx runs the sources. */
  readonly entry: string;

  constructor(spec: VmmSpec, serialLogPath: string, command = vmmCommand()) {
    const [binary, args] = withParentDeathSignal(nodeForChildren(), [
      ...command.args,
      ...vmmArgs(spec),
    ]);
    super(binary, args, {
      serialLog: serialLogPath,
      appendLog: true,
      cwd: projectRoot,
      name: 'VMM',
    });
    this.entry = command.source;
  }
}

export class KvmBackend {
  readonly paths: BackendPaths;
  private vmInstance: KvmVm | null = null;

  constructor(private readonly options: KvmBackendOptions) {
    this.paths = backendPaths(options.runDir);
  }

  /** Starts the VMM process; resolves once it runs (not when the guest is ready). */
  async start(): Promise<KvmVm> {
    const { imageDir, runDir, log = () => {} } = this.options;
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const passt = findPasst();
    if (!passt) log('networking is off: passt is not installed (apt-get install passt)');
    const systemImage = join(imageDir, SYSTEM_IMAGE);
    this.vmInstance = new KvmVm(
      {
        kernel: join(imageDir, 'vmlinuz'),
        initrd: join(imageDir, 'initrd.img'),
        cmdline: kernelCmdline(this.options),
        cpus: this.options.cpus,
        memoryMiB: this.options.memoryMiB,
        disk: this.options.dataDisk,
        ...(existsSync(systemImage) ? { systemImage } : {}),
        vsock: this.paths.vsock,
        ...(passt ? { passt } : {}),
      },
      this.options.serialLog,
    );
    log(`vmm: ${this.vmInstance.entry}`);
    return this.vmInstance;
  }

  /** Kills the VMM at once (a clean stop powers the guest off first); its devices die with it. */
  async kill(): Promise<void> {
    this.vmInstance?.kill();
  }
}
