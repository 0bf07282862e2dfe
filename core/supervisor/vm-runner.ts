// What the lifecycle state machine drives: something that can boot one VM and hand back a handle
// to it. The lifecycle is pure logic over this interface, so it is unit-tested with fakes; a
// backend (the qemu backend today, our own VMM later) implements it with a VMM child process.

/** How the VMM process ended. */
export interface VmExitInfo {
  code: number | null;
  signal: string | null;
  /** True when the exit followed a requested stop (requestPowerOff or kill), false for a crash. */
  expected: boolean;
}

/** Reports a long step of a start ("starting device servers", "booting") with 0..100 percent. */
export type StartProgress = (step: string, percent: number) => void;

/**
 * Boots VMs. Contract for `start`:
 * - Resolves only when the guest is READY (the guest printed BERTH-READY on its serial console),
 *   so "running" means the VM can be used, not merely that a VMM process exists.
 * - On failure (the VMM exits early, a deadline passes, a device server cannot start) it has
 *   already cleaned up everything it started, and rejects with an error carrying the serial
 *   log's tail: a `VmStartError`, or any error with a string `serialTail` property.
 * - When `signal` aborts, it kills whatever it has started (VMM, device servers), waits for it to
 *   be gone, and rejects promptly. The lifecycle relies on this to never have two VMs at once.
 * - `progress` may be called any number of times before it settles, never after.
 */
export interface VmRunner {
  start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm>;
}

/** One booted VM, owned by the lifecycle until `exited` settles. */
export interface RunningVm {
  /**
   * Resolves (never rejects) once the VMM process and everything the start began is gone, whether
   * it powered off, was killed, or crashed. `expected` tells a requested stop from a crash.
   */
  readonly exited: Promise<VmExitInfo>;
  /**
   * Asks the guest to shut down cleanly: sync and unmount /var (so data it synced survives), then
   * power off. Resolves once the request is delivered, not when the VM is gone (see `exited`).
   * Rejects if the request cannot be delivered.
   */
  requestPowerOff(): Promise<void>;
  /**
   * Kills the VMM at once (SIGKILL) and stops its device servers. Resolves once the kill is sent;
   * `exited` then settles. A no-op once the VM has exited.
   */
  kill(): Promise<void>;
  /** The last `lines` lines of the serial console (and VMM stderr), for error reports. */
  serialTail(lines?: number): string;
  /** Calls `listener` with serial console output as it arrives; returns the unsubscribe. */
  subscribeSerial(listener: (text: string) => void): () => void;
  /** The VMM process's pid (for `berth status` and for tests that kill it). */
  readonly pid: number | undefined;
  /** Which backend runs it ("kvm", "qemu"), and why that one (e.g. a "slow: ..." notice). */
  readonly backend: string;
  readonly backendReason: string;
}

/** A failed start, with what the guest printed and, if the VMM exited, how. */
export class VmStartError extends Error {
  readonly serialTail: string;
  readonly exit: VmExitInfo | null;

  constructor(message: string, details: { serialTail: string; exit?: VmExitInfo | null }) {
    super(message);
    this.name = 'VmStartError';
    this.serialTail = details.serialTail;
    this.exit = details.exit ?? null;
  }
}

/** "killed by SIGKILL", "exit code 1": how a user reads an exit. */
export function describeExit(exit: Pick<VmExitInfo, 'code' | 'signal'>): string {
  if (exit.signal) return `killed by ${exit.signal}`;
  if (exit.code !== null) return `exit code ${exit.code}`;
  return 'exited for an unknown reason';
}
