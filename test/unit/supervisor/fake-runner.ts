// A VmRunner and RunningVm whose every step the test controls: when the guest becomes ready,
// whether it honours a power-off, when it crashes. It counts live VMs so a test can prove that
// two never run at once.
import type {
  RunningVm,
  StartProgress,
  VmExitInfo,
  VmRunner,
} from '../../../core/supervisor/vm-runner.ts';

export class FakeVm implements RunningVm {
  readonly backend = 'fake';
  readonly backendReason = 'a test double';
  readonly exited: Promise<VmExitInfo>;
  powerOffRequests = 0;
  kills = 0;
  /** What the guest does when asked to power off: go, ignore it, or the request cannot be sent. */
  onPowerOff: 'exit' | 'ignore' | 'reject' = 'exit';
  killRejects = false;
  serial = ['[    0.000000] Linux version 6.12.0', 'berth-init: /var mounted', 'BERTH-READY'];
  alive = true;
  readonly pid = 4242;
  private stopRequested = false;
  private resolveExit!: (exit: VmExitInfo) => void;

  constructor(private readonly runner: FakeRunner) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  async requestPowerOff(): Promise<void> {
    this.powerOffRequests++;
    if (this.onPowerOff === 'reject') throw new Error('serial console closed');
    this.stopRequested = true;
    if (this.onPowerOff === 'exit') void Promise.resolve().then(() => this.exit(0, null));
  }

  async kill(): Promise<void> {
    this.kills++;
    if (this.killRejects) throw new Error('EPERM');
    this.stopRequested = true;
    this.exit(null, 'SIGKILL');
  }

  /** The VMM dies on its own, e.g. `kill -9` of its process. */
  crash(signal: string | null = 'SIGKILL', code: number | null = null): void {
    this.serial.push('kvm: vcpu0: unhandled exit');
    this.exit(code, signal);
  }

  exit(code: number | null, signal: string | null): void {
    if (!this.alive) return;
    this.alive = false;
    this.runner.alive--;
    this.resolveExit({ code, signal, expected: this.stopRequested });
  }

  subscribeSerial(): () => void {
    return () => {};
  }

  serialTail(lines = 40): string {
    return this.serial.slice(-lines).join('\n');
  }
}

interface PendingStart {
  signal: AbortSignal;
  progress: StartProgress;
  /** The guest printed BERTH-READY. */
  ready(): FakeVm;
  fail(error: unknown): void;
}

export class FakeRunner implements VmRunner {
  calls = 0;
  aborts = 0;
  alive = 0;
  maxAlive = 0;
  readonly vms: FakeVm[] = [];
  /** auto: start resolves at once; manual: the test calls pending.ready() or pending.fail(). */
  mode: 'auto' | 'manual' = 'auto';
  /** Breaks the contract on purpose: a start that does not stop when aborted. */
  ignoreAbort = false;
  pending: PendingStart | null = null;

  start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm> {
    this.calls++;
    if (this.mode === 'auto') return Promise.resolve(this.boot());
    return new Promise((resolve, reject) => {
      this.pending = {
        signal,
        progress,
        ready: () => {
          const vm = this.boot();
          resolve(vm);
          return vm;
        },
        fail: reject,
      };
      if (!this.ignoreAbort) {
        signal.addEventListener('abort', () => {
          this.aborts++; // nothing booted yet in this fake, so there is nothing to kill
          reject(new Error('aborted'));
        });
      }
    });
  }

  get last(): FakeVm {
    const vm = this.vms.at(-1);
    if (!vm) throw new Error('no VM was started');
    return vm;
  }

  private boot(): FakeVm {
    const vm = new FakeVm(this);
    this.vms.push(vm);
    this.alive++;
    this.maxAlive = Math.max(this.maxAlive, this.alive);
    return vm;
  }
}
