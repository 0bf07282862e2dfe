// A process that hosts the supervisor: opens it (taking the data directory's lock), serves the
// control socket, and on SIGINT/SIGTERM stops the VM gracefully before exiting. `berth host` runs
// it in the foreground; the CLI starts it in the background when no supervisor runs. Electron
// main hosts the same pieces. The host also serves the dashboard in browser mode, started on the
// first `dashboard.open` (or `berth host --dashboard`).
import { DashboardServer, type DashboardOptions } from '../dashboard/dashboard-server.ts';
import { ControlServer } from './control-server.ts';
import { Supervisor, type SupervisorOptions } from './supervisor.ts';

/**
 * How long after `dashboard.open` the background host waits for the page to connect before it
 * may exit idle: the user has to get from the printed URL to a browser first.
 */
export const DASHBOARD_VISIT_GRACE_MS = 10 * 60_000;

export interface HostOptions extends SupervisorOptions {
  /**
   * Exit once the VM is stopped and no client is connected for this long (the background host
   * the CLI starts, so nothing lingers after `berth stop`). Off when not given.
   */
  idleExitMs?: number;
  /** The dashboard's options (tests give a renderer directory of their own). */
  dashboard?: Omit<DashboardOptions, 'dashboard' | 'log'>;
  /** See DASHBOARD_VISIT_GRACE_MS (tests shorten it). */
  dashboardVisitGraceMs?: number;
}

export class SupervisorHost {
  private idleTimer: ReturnType<typeof setInterval> | null = null;
  private closing: Promise<void> | null = null;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;
  private dashboardServer: Promise<DashboardServer> | null = null;
  private dashboardOpenedAt = 0;
  private dashboardClients = () => 0;

  private constructor(
    readonly supervisor: Supervisor,
    readonly control: ControlServer,
    private readonly options: HostOptions,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  static async open(options: HostOptions = {}): Promise<SupervisorHost> {
    const supervisor = await Supervisor.open(options);
    let host: SupervisorHost | null = null;
    let control: ControlServer;
    try {
      // The control socket opens the dashboard but serves no host terminal: a terminal belongs
      // to a page (or the desktop app), which the dashboard's own WebSocket serves.
      control = await ControlServer.listen(supervisor.paths.controlSocket, supervisor, {
        dashboard: () => {
          if (!host) throw new Error('the host is still starting');
          return host.dashboard();
        },
      });
    } catch (error) {
      await supervisor.close();
      throw error;
    }
    host = new SupervisorHost(supervisor, control, options);
    if (options.idleExitMs !== undefined) host.exitWhenIdle(options.idleExitMs);
    return host;
  }

  /** Starts the dashboard (once; later calls get the same URL) and returns its URL. */
  async dashboard(): Promise<{ url: string }> {
    if (this.closing) throw new Error('the Berth host is shutting down');
    this.dashboardOpenedAt = Date.now();
    this.dashboardServer ??= DashboardServer.start(this.supervisor, {
      ...this.options.dashboard,
      dashboard: () => this.dashboard(),
      ...(this.options.log ? { log: this.options.log } : {}),
    }).then(
      (server) => {
        this.dashboardClients = () => server.clientCount;
        return server;
      },
      (error: Error) => {
        this.dashboardServer = null; // let a later call try again
        throw new Error(`cannot start the dashboard: ${error.message}`);
      },
    );
    const server = await this.dashboardServer;
    return { url: server.url };
  }

  /** Dashboard pages connected now (0 when the dashboard was never started). */
  get dashboardClientCount(): number {
    return this.dashboardClients();
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
        const dashboard = await this.dashboardServer?.catch(() => null);
        await dashboard?.close();
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
    const grace = this.options.dashboardVisitGraceMs ?? DASHBOARD_VISIT_GRACE_MS;
    this.idleTimer = setInterval(
      () => {
        // A dashboard page is a client like any other; a URL just handed out counts as one too.
        const dashboardInUse =
          this.dashboardClients() > 0 ||
          (this.dashboardServer !== null && Date.now() - this.dashboardOpenedAt < grace);
        const idle =
          this.supervisor.status().state === 'stopped' &&
          this.control.clientCount === 0 &&
          !dashboardInUse;
        if (!idle) idleSince = Date.now();
        else if (Date.now() - idleSince >= idleMs) void this.close();
      },
      Math.min(500, idleMs),
    );
  }
}
