// The VmRunner the lifecycle uses on the qemu backend: device servers + QEMU (QemuBackend),
// "ready" when the guest prints BERTH-READY. A failed or aborted start leaves nothing running,
// and the start error carries the serial log's tail.
import { QemuBackend, type QemuBackendOptions } from '../backends/qemu/qemu-backend.ts';
import { VmError } from '../backends/qemu/qemu-vm.ts';
import {
  type RunningVm,
  type StartProgress,
  type VmExitInfo,
  type VmRunner,
  VmStartError,
} from './vm-runner.ts';

const READY = /BERTH-READY (\d+\.\d+)\r?\n/;
const FOREVER_MS = 2 ** 31 - 1;

export interface QemuRunnerOptions extends QemuBackendOptions {
  /** How long the guest has to print BERTH-READY (generous: TCG on a loaded machine). */
  readyDeadlineMs?: number;
}

export class QemuVmRunner implements VmRunner {
  constructor(private readonly options: QemuRunnerOptions) {}

  async start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm> {
    const backend = new QemuBackend(this.options);
    progress('starting the device servers', 10);
    const vm = await backend.start();
    const onAbort = () => void backend.kill();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      progress('booting the guest', 30);
      await vm.waitFor(READY, 'BERTH-READY', this.options.readyDeadlineMs ?? 120_000);
      if (signal.aborted) throw new Error('start cancelled');
      progress('guest ready', 100);
    } catch (error) {
      await backend.kill();
      const tail = error instanceof VmError ? error.serialTail : vm.serialTail();
      throw new VmStartError(`the VM did not start: ${(error as Error).message.split('\n')[0]}`, {
        serialTail: tail,
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }

    let powerOffRequested = false;
    const exited: Promise<VmExitInfo> = vm.waitExit(FOREVER_MS).then(
      async (exit) => {
        await backend.stopServers();
        return { code: exit.code, signal: exit.signal, expected: powerOffRequested };
      },
      () => ({ code: null, signal: null, expected: powerOffRequested }),
    );
    return {
      exited,
      requestPowerOff: async () => {
        powerOffRequested = true;
        // The serial shell's poweroff: init syncs and unmounts /var, then powers off.
        vm.write('poweroff\n');
      },
      kill: async () => {
        await backend.kill();
        await exited;
      },
      serialTail: (lines) => vm.serialTail(lines),
      subscribeSerial: (listener) => vm.subscribeSerial(listener),
      pid: vm.pid,
      backend: 'qemu',
      // The kvm backend (our own VMM) is not there yet, so QEMU runs the machine with our devices.
      backendReason: `QEMU with Berth's own virtio devices; ${backend.accel.accel}: ${backend.accel.reason}`,
    };
  }
}
