// The VmRunner contract over any backend whose VM is a SerialProcess (QEMU on the qemu backend,
// our VMM process on the kvm backend): "ready" when the guest prints BERTH-READY; a failed or
// aborted start leaves nothing running, and its error carries the serial log's tail; power-off
// is `poweroff` typed at the serial shell.
import { READY_LINE } from '../backends/guest-devices.ts';
import { type SerialProcess, VmError } from '../backends/qemu/serial-process.ts';
import { type RunningVm, type StartProgress, type VmExitInfo, VmStartError } from './vm-runner.ts';

const FOREVER_MS = 2 ** 31 - 1;

/** What a backend gives the runner. */
export interface SerialVmBackend {
  /** Starts the VM process (and what it needs); resolves once it runs, not when it is ready. */
  start(): Promise<SerialProcess>;
  /** Kills the VM process and whatever else the start began, at once. */
  kill(): Promise<void>;
  /** After the VM process exited by itself: stops what it needed (device servers). */
  stopAfterExit?(): Promise<void>;
}

export interface SerialVmStart {
  backend: SerialVmBackend;
  /** The progress step while `start()` runs ("starting the device servers"). */
  startStep: string;
  /** How long the guest has to print BERTH-READY. */
  readyDeadlineMs: number;
  /** RunningVm.backend and backendReason. */
  name: string;
  reason: () => string;
}

export async function startSerialVm(
  options: SerialVmStart,
  signal: AbortSignal,
  progress: StartProgress,
): Promise<RunningVm> {
  const { backend } = options;
  if (signal.aborted) throw new Error('start cancelled');
  progress(options.startStep, 10);
  const vm = await backend.start();
  const onAbort = () => void backend.kill();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted) throw new Error('start cancelled');
    progress('booting the guest', 30);
    await vm.waitFor(READY_LINE, 'BERTH-READY', options.readyDeadlineMs);
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
      await backend.stopAfterExit?.();
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
    backend: options.name,
    backendReason: options.reason(),
  };
}
