// The VmRunner the lifecycle uses on the kvm backend: our VMM in a child process (KvmBackend),
// under the common serial-VM contract (serial-vm-runner.ts).
import { KvmBackend, type KvmBackendOptions } from '../backends/kvm/kvm-backend.ts';
import { startSerialVm } from './serial-vm-runner.ts';
import type { RunningVm, StartProgress, VmRunner } from './vm-runner.ts';

export interface KvmRunnerOptions extends KvmBackendOptions {
  /** How long the guest has to print BERTH-READY. */
  readyDeadlineMs?: number;
  /** Why the kvm backend runs the VM (the start-up probe's reason). */
  reason: string;
}

export class KvmVmRunner implements VmRunner {
  constructor(private readonly options: KvmRunnerOptions) {}

  start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm> {
    const backend = new KvmBackend(this.options);
    return startSerialVm(
      {
        backend: { start: () => backend.start(), kill: () => backend.kill() },
        startStep: 'starting the VMM',
        readyDeadlineMs: this.options.readyDeadlineMs ?? 120_000,
        name: 'kvm',
        reason: () => `Berth's own VMM on /dev/kvm; ${this.options.reason}`,
      },
      signal,
      progress,
    );
  }
}
