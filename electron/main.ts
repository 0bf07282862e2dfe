// The Electron main process: thin on purpose. It keeps one instance, hosts the supervisor
// in-process (SupervisorHost: the data directory's lock and the control socket, so the `berth`
// command talks to the app), shows the tray and the window, and carries the renderer's JSON-RPC
// over IPC to an ApiDispatch per window. What can be decided without Electron (the tray's menu,
// IPC validation, URL and CSP rules, dialog texts, paths) lives in pure modules beside this one.
import { existsSync } from 'node:fs';
import {
  app,
  dialog,
  ipcMain,
  Menu,
  session,
  type BrowserWindow,
  type IpcMainEvent,
  type WebContents,
} from 'electron';
import { HostTerminals } from '../core/host-terminal/host-terminals.ts';
import { ApiDispatch, type ClientChannelOut } from '../core/supervisor/api-dispatch.ts';
import { DataDirLockedError } from '../core/supervisor/data-dir-lock.ts';
import { SupervisorHost } from '../core/supervisor/host.ts';
import { appPaths } from './app-paths.ts';
import {
  QUIT_BUTTON,
  dataDirLockedDialog,
  openFailedDialog,
  quitDialog,
  quitNeedsConfirmation,
  type MessageBoxModel,
} from './dialogs.ts';
import { BERTH_CHANNEL } from './ipc-channel.ts';
import { validateIpcMessage } from './ipc-validation.ts';
import { RendererChannels } from './renderer-channels.ts';
import {
  bringToFront,
  createSecureWindow,
  hardenAllWebContents,
  hardenSession,
} from './secure-window.ts';
import { BerthTray } from './tray.ts';
import { trayItemPage, type TrayActionId, type TrayExtra } from './tray-menu.ts';
import { navigateMessage, type UiPage } from './ui-navigation.ts';
import { directoryUrl } from './url-policy.ts';

const log = (line: string) => console.log(`berth: ${line}`);
const paths = appPaths();
const rendererRoot = directoryUrl(paths.rendererDir);

/** The running app: one supervisor host, one tray, at most one dashboard window. */
class DesktopApp {
  private window: BrowserWindow | null = null;
  /** The page has loaded (its bridge listener is there); until then a navigation waits. */
  private windowReady = false;
  private pendingPage: UiPage | null = null;
  private readonly ourContents = new Set<number>();
  private readonly channels = new RendererChannels<ApiDispatch>((id, error) =>
    log(`IPC from webContents ${id} failed: ${(error as Error).message}`),
  );
  private tray: BerthTray | null = null;
  private progress: TrayExtra['progress'];
  private quitting: 'no' | 'asking' | 'stopping' = 'no';
  private hostClosed = false;

  constructor(private readonly host: SupervisorHost) {}

  start(): void {
    ipcMain.on(BERTH_CHANNEL, (event, payload: unknown) => this.onMessage(event, payload));
    const supervisor = this.host.supervisor;
    supervisor.on('state', (change) => {
      if (change.to !== 'starting') this.progress = undefined;
      this.refreshTray();
    });
    supervisor.on('progress', ({ operation, step, percent }) => {
      if (operation !== 'start') return;
      this.progress = { step, percent };
      this.refreshTray();
    });
    supervisor.on('settings', () => this.refreshTray());
    this.tray = new BerthTray(
      paths.trayIcon,
      (id) => this.onTrayAction(id),
      () => this.showPage('dashboard'),
    );
    this.refreshTray();
    Menu.setApplicationMenu(this.applicationMenu());
    this.host.closeOnSignals(log);
    // However the host ends (a signal, or the quit below), the app ends with it.
    void this.host.done.then(() => {
      this.hostClosed = true;
      app.quit();
    });
    this.showWindow();
  }

  /** A second launch of Berth: bring the dashboard forward instead. */
  focus(): void {
    this.showWindow();
  }

  /**
   * Quitting stops the VM (it is the app's child): ask first while it runs, then close the host
   * (graceful stop, sockets, lock) and quit for real once it is closed.
   */
  onBeforeQuit(event: { preventDefault(): void }): void {
    if (this.hostClosed) {
      this.channels.closeAll();
      this.tray?.destroy();
      return;
    }
    event.preventDefault();
    if (this.quitting !== 'no') return; // already asking, or already stopping
    void this.quit();
  }

  private async quit(): Promise<void> {
    const state = this.host.supervisor.status().state;
    if (quitNeedsConfirmation(state)) {
      this.quitting = 'asking';
      const { response } = await this.messageBox(quitDialog(state));
      if (response !== QUIT_BUTTON) {
        this.quitting = 'no';
        return;
      }
    }
    this.quitting = 'stopping';
    this.refreshTray();
    log('quitting: stopping the VM');
    await this.host.close().catch((error: Error) => log(`closing the host: ${error.message}`));
  }

  private onMessage(event: IpcMainEvent, payload: unknown): void {
    const verdict = validateIpcMessage(event, payload, {
      rendererRoot,
      isOurWebContents: (id) => this.ourContents.has(id),
    });
    if (!verdict.ok) {
      log(`dropped an IPC message: ${verdict.reason}`);
      return;
    }
    const contents = event.sender;
    this.channels.deliver(contents.id, verdict.text, () => this.openDispatch(contents));
  }

  private openDispatch(contents: WebContents): ApiDispatch {
    const out: ClientChannelOut = {
      send: (text) => {
        if (!contents.isDestroyed()) contents.send(BERTH_CHANNEL, text);
      },
      // IPC reports no back-pressure: it is always writable, and never drains.
      writable: true,
      onDrain: () => {},
    };
    return new ApiDispatch(this.host.supervisor, out, {
      terminals: (sink) => new HostTerminals(sink, out),
      dashboard: () => this.host.dashboard(),
    });
  }

  private onTrayAction(id: TrayActionId): void {
    const page = trayItemPage(id);
    if (page) {
      this.showPage(page);
      return;
    }
    const supervisor = this.host.supervisor;
    const run = (what: string, call: () => Promise<unknown>) => {
      // A failure shows as the error state (tray icon and tooltip, the window's banner).
      call().catch((error: Error) => log(`${what} failed: ${error.message}`));
    };
    switch (id) {
      case 'start':
        run('start', () => supervisor.start());
        break;
      case 'stop':
        run('stop', () => supervisor.stop());
        break;
      case 'restart':
        run('restart', () => supervisor.restart());
        break;
      case 'quit':
        app.quit();
        break;
      default:
        break; // the status line
    }
  }

  private refreshTray(): void {
    const status = this.host.supervisor.status();
    const extra: TrayExtra = { pendingRestart: status.pendingRestart };
    if (this.progress) extra.progress = this.progress;
    if (status.error) extra.errorMessage = status.error.message;
    if (this.quitting === 'stopping') extra.quitting = true;
    this.tray?.update(status.state, extra);
  }

  private showPage(page: UiPage): void {
    const window = this.showWindow();
    if (this.windowReady) window.webContents.send(BERTH_CHANNEL, navigateMessage(page));
    else this.pendingPage = page;
  }

  private showWindow(): BrowserWindow {
    if (this.window && !this.window.isDestroyed()) {
      bringToFront(this.window);
      return this.window;
    }
    const window = createSecureWindow({
      title: 'Berth',
      width: 1200,
      height: 780,
      minWidth: 800,
      minHeight: 560,
      icon: paths.appIcon,
      preload: paths.preload,
      devTools: !app.isPackaged,
    });
    this.window = window;
    this.windowReady = false;
    const contents = window.webContents;
    const id = contents.id;
    this.ourContents.add(id);
    contents.on('did-start-navigation', (details) => {
      if (!details.isMainFrame || details.isSameDocument) return;
      // A new document (a reload): the old page's subscriptions and sessions go with it.
      this.windowReady = false;
      this.channels.reset(id);
    });
    contents.on('did-finish-load', () => {
      this.windowReady = true;
      const page = this.pendingPage;
      this.pendingPage = null;
      if (page) contents.send(BERTH_CHANNEL, navigateMessage(page));
    });
    contents.on('render-process-gone', (_event, details) => {
      log(`the window's renderer is gone (${details.reason}); reload it to reconnect`);
      this.windowReady = false;
      this.channels.reset(id);
    });
    window.on('closed', () => {
      this.ourContents.delete(id);
      this.channels.reset(id);
      if (this.window === window) this.window = null;
    });
    if (!existsSync(paths.rendererIndex)) {
      log(`the renderer is not built (${paths.rendererIndex} is missing)`);
      void this.messageBox({
        type: 'warning',
        title: 'Berth',
        message: "Berth's window is not built.",
        detail: `${paths.rendererIndex} is missing: run \`npm run setup\`. The VM, the tray and the berth command work without it.`,
        buttons: ['OK'],
        defaultId: 0,
        cancelId: 0,
      });
    }
    window.loadFile(paths.rendererIndex).catch((error: Error) => {
      log(`cannot load ${paths.rendererIndex}: ${error.message}`);
    });
    return window;
  }

  private messageBox(model: MessageBoxModel) {
    const parent = this.window && !this.window.isDestroyed() ? this.window : null;
    return parent ? dialog.showMessageBox(parent, model) : dialog.showMessageBox(model);
  }

  private applicationMenu(): Menu {
    return Menu.buildFromTemplate([
      {
        label: 'Berth',
        submenu: [
          { label: 'Dashboard', click: () => this.showPage('dashboard') },
          { label: 'Console', click: () => this.showPage('console') },
          {
            label: 'Settings',
            accelerator: 'CmdOrCtrl+,',
            click: () => this.showPage('settings'),
          },
          { label: 'Logs', click: () => this.showPage('logs') },
          { type: 'separator' },
          { role: 'quit' },
        ],
      },
      { role: 'editMenu' },
      { role: 'viewMenu' },
      { role: 'windowMenu' },
    ]);
  }
}

async function openHost(): Promise<SupervisorHost | null> {
  try {
    return await SupervisorHost.open({ log });
  } catch (error) {
    const model =
      error instanceof DataDirLockedError
        ? dataDirLockedDialog(error)
        : openFailedDialog((error as Error).message);
    log(model.detail);
    await dialog.showMessageBox(model);
    return null;
  }
}

if (!app.requestSingleInstanceLock()) {
  // Another Berth has this user's app lock: it gets 'second-instance' and shows its window.
  app.quit();
} else {
  let desktop: DesktopApp | null = null;
  app.setName('Berth');
  app.enableSandbox(); // every renderer, whatever its webPreferences say
  hardenAllWebContents(app, rendererRoot, log);
  app.on('second-instance', () => desktop?.focus());
  app.on('window-all-closed', () => {
    // Berth lives in the tray: closing the window neither stops the VM nor quits.
  });
  // Until the host is open there is nothing to stop: quitting then needs no question.
  app.on('before-quit', (event) => desktop?.onBeforeQuit(event));
  void app.whenReady().then(async () => {
    hardenSession(session.defaultSession, rendererRoot, log);
    const host = await openHost();
    if (!host) {
      app.exit(1);
      return;
    }
    desktop = new DesktopApp(host);
    desktop.start();
  });
}
