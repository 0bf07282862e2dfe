// A QEMU process running the factory image, with its serial console on our pipes: everything the
// guest prints is appended to the serial log, and callers wait for lines with a deadline. Every
// failure carries the serial log's tail, because that is where a guest says what went wrong.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { qemuArgs, type QemuVmConfig } from './qemu-command.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';

const SETPRIV = '/usr/bin/setpriv';

/**
 * QEMU must never outlive the process that runs it (a crashed test or supervisor would leave a
 * VM holding the data disk). util-linux's setpriv sets PR_SET_PDEATHSIG and execs QEMU, so the
 * pid we hold is QEMU's own.
 */
export function withParentDeathSignal(binary: string, args: string[]): [string, string[]] {
  if (!existsSync(SETPRIV)) return [binary, args];
  return [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', binary, ...args]];
}

export class VmError extends Error {
  constructor(
    message: string,
    readonly serialTail: string,
  ) {
    super(`${message}\n--- serial log (last lines) ---\n${serialTail}\n--- end of serial log ---`);
    this.name = 'VmError';
  }
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const MAX_SERIAL_BUFFER = 4 << 20;

export class QemuVm {
  private serial = '';
  /** Characters dropped from the front of `serial` to bound memory; offsets stay absolute. */
  private dropped = 0;
  private readonly log: WriteStream;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private exit: VmExit | null = null;
  private stderr = '';
  readonly startedAt = performance.now();

  constructor(config: Omit<QemuVmConfig, 'serial'>, serialLogPath: string, binary = QEMU_BINARY) {
    this.log = createWriteStream(serialLogPath, { flags: 'a', mode: 0o600 });
    const args = qemuArgs({ ...config, serial: { kind: 'stdio' } });
    // Own process group: a terminal's Ctrl-C reaches us, and we power the guest off cleanly;
    // it must not kill QEMU under the guest. pdeathsig still ends QEMU if we die.
    this.child = spawn(...withParentDeathSignal(binary, args), {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (text: string) => this.onSerial(text));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-8192);
    });
    this.child.stdin!.on('error', () => {}); // QEMU exiting closes the pipe; exit is reported separately.
    this.child.on('error', (error) => {
      this.stderr += `cannot run ${binary}: ${error.message}`;
      this.onExit({ code: null, signal: null });
    });
    this.child.on('exit', (code, signal) => this.onExit({ code, signal }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Absolute offset of the end of the serial output so far; pass it to waitFor's `after`. */
  get serialOffset(): number {
    return this.dropped + this.serial.length;
  }

  private readonly serialListeners = new Set<(text: string) => void>();

  /** Everything the guest prints from now on (for an attached console). */
  subscribeSerial(listener: (text: string) => void): () => void {
    this.serialListeners.add(listener);
    return () => this.serialListeners.delete(listener);
  }

  private onSerial(text: string): void {
    this.log.write(text);
    for (const listener of this.serialListeners) listener(text);
    this.serial += text;
    if (this.serial.length > MAX_SERIAL_BUFFER) {
      const cut = this.serial.length - MAX_SERIAL_BUFFER / 2;
      this.serial = this.serial.slice(cut);
      this.dropped += cut;
    }
    this.wake();
  }

  private onExit(exit: VmExit): void {
    if (this.exit) return;
    this.exit = exit;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** The serial output from absolute offset `from` (as far back as the buffer still holds). */
  serialSince(from: number): string {
    return this.serial.slice(Math.max(0, from - this.dropped));
  }

  serialTail(lines = 40): string {
    const tail = this.serial.split('\n').slice(-lines).join('\n');
    return this.stderr ? `${tail}\n[qemu stderr] ${this.stderr.trim()}` : tail;
  }

  /** Types into the serial console. */
  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /**
   * Resolves with the first match of `pattern` in the serial output after offset `after`;
   * rejects with the serial tail if the VM exits first or `timeoutMs` passes.
   */
  waitFor(pattern: RegExp, what: string, timeoutMs: number, after = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const start = Math.max(0, after - this.dropped);
        const match = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(
          this.serial.slice(start),
        );
        if (match) return finish(() => resolve(match));
        if (this.exit) {
          const how = this.exit.signal
            ? `signal ${this.exit.signal}`
            : `exit code ${this.exit.code}`;
          finish(() =>
            reject(new VmError(`the VM stopped (${how}) before ${what}`, this.serialTail())),
          );
        }
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new VmError(`${what} did not happen within ${timeoutMs / 1000} s`, this.serialTail()),
            ),
          ),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when QEMU exits; after `timeoutMs` it kills QEMU and rejects with the serial tail. */
  waitExit(timeoutMs: number, what = 'the VM powering off'): Promise<VmExit> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.exit) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        this.log.end(() => resolve(this.exit!));
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        this.kill();
        reject(
          new VmError(
            `${what} did not finish within ${timeoutMs / 1000} s (QEMU killed)`,
            this.serialTail(),
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}
