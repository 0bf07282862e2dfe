// A VM process whose serial console is its stdout, from any argv: QemuVm (the factory image's
// machine) and the nested harness's L1 and L2 machines are all this. Everything the guest prints
// goes to the serial log; callers wait for lines with a deadline; every failure carries the serial
// log's tail, because that is where a guest says what went wrong.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export class VmError extends Error {
  constructor(
    message: string,
    readonly serialTail: string,
  ) {
    super(`${message}\n--- serial log (last lines) ---\n${serialTail}\n--- end of serial log ---`);
    this.name = 'VmError';
  }
}

const MAX_SERIAL_BUFFER = 8 << 20;

export interface SerialProcessOptions {
  serialLog?: string;
  /** Append to the serial log (a data directory's log across boots) instead of starting it anew. */
  appendLog?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The working directory (a Node child resolves `--import tsx` from it). */
  cwd?: string;
  /** How the process is named in its messages ("QEMU"). */
  name?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class SerialProcess {
  private serial = '';
  /** Characters dropped from the front of `serial` to bound memory; offsets stay absolute. */
  private dropped = 0;
  private stderr = '';
  private exit: ProcessExit | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(text: string) => void>();
  private readonly child: ChildProcess;
  private readonly log: WriteStream | null;
  readonly startedAt = performance.now();

  private readonly name: string;

  constructor(binary: string, args: string[], options: SerialProcessOptions = {}) {
    this.name = options.name ?? 'the VM';
    this.log = options.serialLog
      ? createWriteStream(options.serialLog, { flags: options.appendLog ? 'a' : 'w', mode: 0o600 })
      : null;
    // Own process group: a terminal's Ctrl-C reaches us, and we power the guest off cleanly;
    // it must not kill the VM under the guest.
    this.child = spawn(binary, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (text: string) => this.onSerial(text));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-8192);
    });
    this.child.stdin!.on('error', () => {}); // the VM exiting closes the pipe; exit is reported separately
    this.child.on('error', (error) => {
      this.stderr += `cannot run ${binary}: ${error.message}`;
      this.onExit({ code: null, signal: null });
    });
    this.child.on('exit', (code, signal) => this.onExit({ code, signal }));
  }

  /** The process's own messages (stderr), the last 8 KiB. */
  get stderrText(): string {
    return this.stderr;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): ProcessExit | null {
    return this.exit;
  }

  get serialOffset(): number {
    return this.dropped + this.serial.length;
  }

  /** Everything the guest prints from now on (for an attached console). */
  subscribeSerial(listener: (text: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onSerial(text: string): void {
    this.log?.write(text);
    for (const listener of this.listeners) listener(text);
    this.serial += text;
    if (this.serial.length > MAX_SERIAL_BUFFER) {
      const cut = this.serial.length - MAX_SERIAL_BUFFER / 2;
      this.serial = this.serial.slice(cut);
      this.dropped += cut;
    }
    this.wake();
  }

  private onExit(exit: ProcessExit): void {
    if (this.exit) return;
    this.exit = exit;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  serialSince(from: number): string {
    return this.serial.slice(Math.max(0, from - this.dropped));
  }

  serialTail(lines = 40): string {
    const tail = this.serial.split('\n').slice(-lines).join('\n');
    return this.stderr ? `${tail}\n[${this.name} stderr] ${this.stderr.trim()}` : tail;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /**
   * The first match of `pattern` in the output after offset `after`; rejects with the serial
   * tail if the process exits first or `timeoutMs` passes.
   */
  waitFor(pattern: RegExp, what: string, timeoutMs: number, after = 0): Promise<RegExpExecArray> {
    const regex = new RegExp(pattern.source, pattern.flags.replace('g', ''));
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = regex.exec(this.serial.slice(Math.max(0, after - this.dropped)));
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

  /** Resolves when the process exits; after `timeoutMs` it kills it and rejects. */
  waitExit(timeoutMs: number, what = 'the VM powering off'): Promise<ProcessExit> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.exit) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        if (this.log) this.log.end(() => resolve(this.exit!));
        else resolve(this.exit);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        this.kill();
        reject(
          new VmError(
            `${what} did not finish within ${timeoutMs / 1000} s (${this.name} killed)`,
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
