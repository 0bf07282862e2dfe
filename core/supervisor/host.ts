// A process that hosts the supervisor: opens it (taking the data directory's lock), serves the
// control socket, and on SIGINT/SIGTERM stops the VM gracefully before exiting. `berth host` runs
// it in the foreground; the CLI starts it in the background when no supervisor runs. Electron
// main hosts the same pieces.
import { ControlServer } from './control-server.ts';
import { Supervisor, type SupervisorOptions } from './supervisor.ts';

export interface HostOptions extends SupervisorOptions {
  /**
   * Exit once the VM is stopped and no client is connected for this long (the background host
   * the CLI starts, so nothing lingers after `berth stop`). Off when not given.
   */
  idleExitMs?: number;
}

export class SupervisorHost {
  private idleTimer: ReturnType<typeof setInterval> | null = null;
  private closing: Promise<void> | null = null;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;

  private constructor(
    readonly supervisor: Supervisor,
    readonly control: ControlServer,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  static async open(options: HostOptions = {}): Promise<SupervisorHost> {
    const supervisor = await Supervisor.open(options);
    let control: ControlServer;
    try {
      control = await ControlServer.listen(supervisor.paths.controlSocket, supervisor);
    } catch (error) {
      await supervisor.close();
      throw error;
    }
    const host = new SupervisorHost(supervisor, control);
    if (options.idleExitMs !== undefined) host.exitWhenIdle(options.idleExitMs);
    return host;
  }

  /** Resolves when the host has shut down (a signal, idle exit, or close()). */
  get done(): Promise<void> {
    return this.exited;
  }

  /** SIGINT and SIGTERM stop the VM (gracefully, within its deadline) and close the host. */
  closeOnSignals(log: (line: string) => void = () => {}): void {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        log(`${signal}: stopping the VM`);
        void this.close();
      });
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.idleTimer) clearInterval(this.idleTimer);
      try {
        await this.control.close();
        await this.supervisor.close();
      } finally {
        this.resolveExited();
      }
    })();
    return this.closing;
  }

  private exitWhenIdle(idleMs: number): void {
    let idleSince = Date.now();
    this.idleTimer = setInterval(
      () => {
        const idle = this.supervisor.status().state === 'stopped' && this.control.clientCount === 0;
        if (!idle) idleSince = Date.now();
        else if (Date.now() - idleSince >= idleMs) void this.close();
      },
      Math.min(500, idleMs),
    );
  }
}
