// The VmRunner the lifecycle uses on the qemu backend: device servers + QEMU (QemuBackend),
// under the common serial-VM contract (serial-vm-runner.ts).
import { QemuBackend, type QemuBackendOptions } from '../backends/qemu/qemu-backend.ts';
import { startSerialVm } from './serial-vm-runner.ts';
import type { RunningVm, StartProgress, VmRunner } from './vm-runner.ts';

export interface QemuRunnerOptions extends QemuBackendOptions {
  /** How long the guest has to print BERTH-READY (generous: TCG on a loaded machine). */
  readyDeadlineMs?: number;
  /** Why the qemu backend runs the VM and not the kvm backend (the start-up probe's reason). */
  whyNotKvm?: string;
}

export class QemuVmRunner implements VmRunner {
  constructor(private readonly options: QemuRunnerOptions) {}

  start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm> {
    const backend = new QemuBackend(this.options);
    const why = this.options.whyNotKvm;
    return startSerialVm(
      {
        backend: {
          start: () => backend.start(),
          kill: () => backend.kill(),
          stopAfterExit: () => backend.stopServers(),
        },
        startStep: 'starting the device servers',
        readyDeadlineMs: this.options.readyDeadlineMs ?? 120_000,
        name: 'qemu',
        reason: () =>
          `QEMU with Berth's own virtio devices; ${backend.accel.accel}: ${backend.accel.reason}` +
          (why ? `; not the kvm backend: ${why}` : ''),
      },
      signal,
      progress,
    );
  }
}
