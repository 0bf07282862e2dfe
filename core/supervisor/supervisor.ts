// The supervisor: the one owner of a data directory's VM. It holds the directory's lock, the
// settings store, the lifecycle (with the VMM in a child process) and the guest connection, and
// implements the API's methods. Electron main and the headless host (`berth host`) both host it;
// clients reach it through the control socket (control-server.ts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, ErrorCode } from '../api/errors.ts';
import type { ParamsOf } from '../api/methods.ts';
import type {
  ApiEvents,
  LogsResult,
  ResetResult,
  SettingsChange,
  SettingsCommit,
  SettingsView,
  VmStats,
  VmStatus,
} from '../api/types.ts';
import { GuestStats } from './guest-stats.ts';
import { DataDisk } from '../disk/data-disk.ts';
import { DebugShellServer } from '../guest/debug-shell-server.ts';
import { GuestConnection } from '../guest/guest-connection.ts';
import type { GuestSsh } from '../guest/ssh-session.ts';
import { loadOrCreateSshKey, type GuestSshKey } from '../guest/ssh-keys.ts';
import { buildPaths, dataPaths } from '../paths.ts';
import { readHostLimits, type HostLimits } from '../settings/host-limits.ts';
import {
  MEMORY_STEP_MiB,
  MIN_DISK_GiB,
  MIN_MEMORY_MiB,
  STORAGE_DRIVERS,
  maxMemoryMiB,
  restartNeeded,
  type SettingsField,
} from '../settings/schema.ts';
import {
  SettingsStore,
  SettingsStoreError,
  SettingsValidationError,
  type SettingsChangeResult,
} from '../settings/store.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { EngineBridge, type EngineSeams } from './engine-bridge.ts';
import { StartCancelledError, VmLifecycle } from './lifecycle.ts';
import { readTail } from './log-tail.ts';
import { VmLauncher, type LaunchContext } from './vm-launcher.ts';
import type { VmRunner } from './vm-runner.ts';

export interface SupervisorOptions {
  /** The data directory (default: dataDirectory()). */
  home?: string;
  imageDir?: string;
  hostLimits?: () => HostLimits;
  /** Seam for tests: the runner for given settings (default: the start-up probe's backend). */
  makeRunner?: ConstructorParameters<typeof VmLauncher>[2];
  log?: (line: string) => void;
  /**
   * The container engine on the host (run/docker.sock, the `berth` docker context, published
   * ports), with its seams; false: none. Default: on, except with a test's `makeRunner`, whose
   * VM has no engine, and whose run must not write the user's docker configuration.
   */
  engine?: EngineSeams | false;
}

type Listener<K extends keyof ApiEvents> = (payload: ApiEvents[K]) => void;

export class Supervisor {
  readonly paths: ReturnType<typeof dataPaths>;
  readonly lifecycle: VmLifecycle;
  readonly settings: SettingsStore;
  private readonly launcher: VmLauncher;
  private readonly hostLimits: () => HostLimits;
  private readonly key: GuestSshKey;
  private readonly log: (line: string) => void;
  private readonly listeners = new Map<keyof ApiEvents, Set<Listener<never>>>();
  private guest: GuestConnection | null = null;
  private debugShell: DebugShellServer | null = null;
  private readonly engine: EngineBridge | null;
  private unsubscribeSerial: (() => void) | null = null;
  private closed = false;
  /** Set while a reset runs: a start from another client then would race its disk deletion. */
  private resetting = false;
  private readonly guestStats = new GuestStats();

  private constructor(
    private readonly lock: DataDirLock,
    options: SupervisorOptions,
    home: string,
  ) {
    this.paths = dataPaths(home);
    this.log = options.log ?? (() => {});
    this.hostLimits = options.hostLimits ?? (() => readHostLimits(home));
    this.settings = SettingsStore.open(this.paths.settings, this.hostLimits);
    for (const warning of this.settings.warnings) this.log(`settings: ${warning}`);
    this.key = loadOrCreateSshKey(this.paths.ssh);
    const context: LaunchContext = {
      imageDir: options.imageDir ?? buildPaths.image,
      dataDisk: this.paths.dataDisk,
      runDir: this.paths.run,
      serialLog: this.paths.serialLog,
      key: this.key,
      log: this.log,
      onImageProgress: (step, percent) =>
        this.emit('progress', { operation: 'image', step, percent }),
    };
    this.launcher = new VmLauncher(
      context,
      () => this.settings.current().settings,
      options.makeRunner,
    );
    this.lifecycle = new VmLifecycle({ runner: this.launcher as VmRunner });
    const engine = options.engine ?? (options.makeRunner ? false : {});
    this.engine =
      engine === false
        ? null
        : new EngineBridge({
            ...engine,
            socketPath: this.paths.dockerSocket,
            vsockPath: join(this.paths.run, 'vsock.sock'),
            guestSsh: () => this.guestSsh(),
            log: this.log,
            onChange: (status) => this.emit('engine', { engine: status ?? null }),
          });
    this.lifecycle.on('state', (change) => {
      this.onState(change.to);
      this.emit('state', change);
    });
    this.lifecycle.on('progress', ({ step, percent }) =>
      this.emit('progress', { operation: 'start', step, percent }),
    );
  }

  /** Takes the data directory's lock and opens its settings; throws DataDirLockedError if taken. */
  static async open(options: SupervisorOptions = {}): Promise<Supervisor> {
    const home = options.home ?? dataPaths().home;
    const paths = dataPaths(home);
    for (const dir of [home, paths.run, paths.logs, paths.disks])
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = DataDirLock.acquire(home);
    try {
      const supervisor = new Supervisor(lock, options, home);
      supervisor.debugShell = await DebugShellServer.listen(paths.debugShellSocket, () =>
        supervisor.guestSsh(),
      );
      return supervisor;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  on<K extends keyof ApiEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  status(): VmStatus {
    return {
      ...this.lifecycle.status(),
      pendingRestart: this.pendingRestart(),
      dataDirectory: this.paths.home,
      ...(this.engine?.status ? { engine: this.engine.status } : {}),
    };
  }

  async start(): Promise<VmStatus> {
    this.refuseDuringReset('start');
    await this.lifecycleCall(() => this.lifecycle.start());
    return this.status();
  }

  async stop(params: ParamsOf<'stop'> = {}): Promise<VmStatus> {
    await this.lifecycleCall(() => this.lifecycle.stop(params));
    return this.status();
  }

  async restart(params: ParamsOf<'restart'> = {}): Promise<VmStatus> {
    this.refuseDuringReset('restart');
    await this.lifecycleCall(() => this.lifecycle.restart(params));
    return this.status();
  }

  /**
   * Reset to factory: stop, export the settings history to a backup file, delete the data disk,
   * reset the settings to this host's defaults (a new commit, so history stays whole), create a
   * fresh data disk, and start again if the VM was running.
   */
  async reset(params: ParamsOf<'reset'>): Promise<ResetResult> {
    this.refuseDuringReset('reset');
    this.resetting = true;
    try {
      return await this.runReset(params);
    } finally {
      this.resetting = false;
    }
  }

  private refuseDuringReset(what: string): void {
    if (this.resetting) {
      throw new ApiError(
        ErrorCode.wrongState,
        `cannot ${what} while a reset to factory is running; it starts the VM again itself if it was running`,
      );
    }
  }

  private async runReset(params: ParamsOf<'reset'>): Promise<ResetResult> {
    const progress = (step: string, percent: number) =>
      this.emit('progress', { operation: 'reset', step, percent });
    const state = this.lifecycle.status().state;
    const wasRunning = state === 'running' || state === 'starting';
    progress('stopping the VM', 5);
    await this.lifecycleCall(() => this.lifecycle.stop());
    progress('backing up the settings history', 40);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const backup = this.settings.exportBackup(
      join(this.paths.home, 'backups', `settings-${stamp}.json`),
    );
    progress('deleting the data disk', 50);
    new DataDisk(this.paths.dataDisk).wipe();
    const reset = this.settings.resetToDefaults({ requestedBy: params.source ?? 'cli' });
    this.emitSettings();
    progress('creating a new data disk', 60);
    if (wasRunning) {
      progress('starting the VM', 70);
      await this.lifecycleCall(() => this.lifecycle.start());
    }
    progress('reset done', 100);
    return {
      backup: backup.path,
      settings: reset.settings,
      revision: reset.revision,
      restarted: wasRunning,
    };
  }

  settingsView(): SettingsView {
    const { revision, settings } = this.settings.current();
    const host = this.hostLimits();
    return {
      revision,
      settings,
      limits: {
        cpus: { min: 1, max: host.cores },
        memoryMiB: { min: MIN_MEMORY_MiB, max: maxMemoryMiB(host), step: MEMORY_STEP_MiB },
        diskGiB: {
          min: Math.max(MIN_DISK_GiB, settings.diskGiB),
          max: settings.diskGiB + host.freeDiskGiB,
        },
        storageDrivers: STORAGE_DRIVERS,
      },
      pendingRestart: this.pendingRestart(),
      warnings: [...this.settings.warnings],
    };
  }

  async setSettings(params: ParamsOf<'settings.set'>): Promise<SettingsChange> {
    const result = settingsCall(() =>
      this.settings.set(params.changes, {
        source: params.source ?? 'cli',
        message: params.message,
      }),
    );
    return this.afterSettingsChange(result, params.apply === true);
  }

  async rollbackSettings(params: ParamsOf<'settings.rollback'>): Promise<SettingsChange> {
    const result = settingsCall(() =>
      this.settings.rollback(params.revision, {
        source: params.source ?? 'cli',
        message: params.message,
      }),
    );
    return this.afterSettingsChange(result, params.apply === true);
  }

  settingsHistory(params: ParamsOf<'settings.history'> = {}): SettingsCommit[] {
    const history = this.settings.history();
    return params.limit === undefined ? history : history.slice(0, params.limit);
  }

  logs(params: ParamsOf<'logs'> = {}): LogsResult {
    return {
      text: readTail(this.paths.serialLog, params.lines ?? 100),
      path: this.paths.serialLog,
    };
  }

  /** CPU, memory and disk use of the running VM, read in the guest in one command. */
  async stats(): Promise<VmStats> {
    const ssh = await this.guestSsh();
    const result = await ssh.exec(GuestStats.COMMAND);
    if (result.code !== 0) {
      throw new ApiError(ErrorCode.wrongState, `cannot read the VM's statistics: ${result.stderr}`);
    }
    return this.guestStats.parse(
      result.stdout.toString(),
      new DataDisk(this.paths.dataDisk).info(),
    );
  }

  /** The SSH connection to the running guest, for shells and commands. */
  async guestSsh(): Promise<GuestSsh> {
    const guest = this.guest;
    if (!guest) {
      throw new ApiError(
        ErrorCode.wrongState,
        `the VM is ${this.lifecycle.status().state}, not running; start it first (berth start)`,
      );
    }
    return guest.ssh();
  }

  /** Stops the VM (gracefully, with the usual deadline), closes the sockets, releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.lifecycle
        .stop()
        .catch((error) => this.log(`stop on close: ${(error as Error).message}`));
      await this.debugShell?.close();
      await this.engine?.stop();
    } finally {
      this.lock.release();
    }
  }

  private async afterSettingsChange(
    result: SettingsChangeResult,
    apply: boolean,
  ): Promise<SettingsChange> {
    if (result.changed) this.emitSettings();
    const state = this.lifecycle.status().state;
    const needsRestart = this.pendingRestart().length > 0;
    let applied = false;
    if (apply && needsRestart && (state === 'running' || state === 'starting')) {
      await this.restart();
      applied = true;
    }
    const { changed, revision, settings, diff, restartNeeded: fields } = result;
    return { changed, revision, settings, diff, restartNeeded: fields, applied };
  }

  /** Settings changed since the running VM booted, that only a restart applies. */
  private pendingRestart(): SettingsField[] {
    const state = this.lifecycle.status().state;
    const booted = this.launcher.bootedWith;
    if (state !== 'running' || !booted) return [];
    return restartNeeded(booted, this.settings.current().settings);
  }

  /** A guest connection and a serial feed exist exactly while the VM runs. */
  private onState(state: VmStatus['state']): void {
    this.unsubscribeSerial?.();
    this.unsubscribeSerial = null;
    this.guest?.close(); // open shells end with the VM; new ones are refused until it runs
    this.guest = null;
    if (state !== 'running') {
      void this.engine?.stop();
      return;
    }
    this.guest = new GuestConnection(join(this.paths.run, 'vsock.sock'), this.key);
    void this.engine?.start();
    const vm = this.lifecycle.currentVm;
    this.unsubscribeSerial = vm?.subscribeSerial((text) => this.emit('serial', { text })) ?? null;
  }

  private emitSettings(): void {
    const { revision, settings } = this.settings.current();
    this.emit('settings', { revision, settings, pendingRestart: this.pendingRestart() });
  }

  private emit<K extends keyof ApiEvents>(event: K, payload: ApiEvents[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.log(`an event listener failed: ${(error as Error).message}`);
      }
    }
  }

  /** Lifecycle failures as API errors: a failed start carries the serial tail. */
  private async lifecycleCall(call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (error instanceof StartCancelledError) {
        throw new ApiError(ErrorCode.wrongState, 'the start was cancelled by a stop');
      }
      const status = this.lifecycle.status();
      throw new ApiError(ErrorCode.vmFailed, (error as Error).message, {
        state: status.state,
        serialTail: status.error?.serialTail ?? (error as { serialTail?: string }).serialTail ?? '',
      });
    }
  }
}

/** Settings refusals as API errors that name each field. */
function settingsCall(call: () => SettingsChangeResult): SettingsChangeResult {
  try {
    return call();
  } catch (error) {
    if (error instanceof SettingsValidationError) {
      throw new ApiError(ErrorCode.invalidParams, error.message, { errors: [...error.errors] });
    }
    if (error instanceof SettingsStoreError)
      throw new ApiError(ErrorCode.settingsStore, error.message);
    throw error;
  }
}
