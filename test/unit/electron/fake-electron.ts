// A stand-in for the `electron` module, for running the main-process bundle under plain Node
// (the Electron binary cannot be installed on these machines). It implements only what
// electron/main.ts and its modules call, and records everything, so a test can play the user
// (tray clicks, IPC messages, quit) and read what main did. State lives in `fake`; reset() it
// between scenarios.
import { EventEmitter } from 'node:events';

type Handler = (...args: any[]) => any;

export interface MenuTemplateItem {
  id?: string;
  label?: string;
  enabled?: boolean;
  type?: string;
  role?: string;
  click?: () => void;
  submenu?: MenuTemplateItem[];
}

export class FakeWebContents extends EventEmitter {
  private static nextId = 1;
  readonly id = FakeWebContents.nextId++;
  readonly mainFrame = { frameTreeNodeId: 1000 + this.id };
  readonly sent: { channel: string; args: unknown[] }[] = [];
  windowOpenHandler: Handler | null = null;
  loadedFile: string | null = null;
  destroyed = false;

  send(channel: string, ...args: unknown[]): void {
    this.sent.push({ channel, args });
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  isLoading(): boolean {
    return false;
  }
  getURL(): string {
    return '';
  }
  setWindowOpenHandler(handler: Handler): void {
    this.windowOpenHandler = handler;
  }
}

export class BrowserWindow extends EventEmitter {
  readonly webContents = new FakeWebContents();
  shown = 0;
  focused = 0;
  private destroyed = false;

  constructor(readonly options: Record<string, any>) {
    super();
    fake.windows.push(this);
    app.emit('web-contents-created', {}, this.webContents);
  }
  loadFile(path: string): Promise<void> {
    this.webContents.loadedFile = path;
    return Promise.resolve();
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  isMinimized(): boolean {
    return false;
  }
  restore(): void {}
  show(): void {
    this.shown++;
  }
  focus(): void {
    this.focused++;
  }
  /** The user closes the window. */
  close(): void {
    this.destroyed = true;
    this.webContents.destroyed = true;
    this.emit('closed');
  }
}

export class Tray extends EventEmitter {
  image: { path: string };
  tooltip = '';
  menu: { template: MenuTemplateItem[] } | null = null;
  private destroyed = false;

  constructor(image: { path: string }) {
    super();
    this.image = image;
    fake.trays.push(this);
  }
  setImage(image: { path: string }): void {
    this.image = image;
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: { template: MenuTemplateItem[] }): void {
    this.menu = menu;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
  }
  /** The user picks a tray menu item by its id. */
  click(id: string): void {
    const item = this.menu?.template.find((entry) => entry.id === id);
    if (!item) throw new Error(`no tray item ${id}`);
    if (item.enabled === false) throw new Error(`tray item ${id} is disabled`);
    item.click?.();
  }
}

class FakeApp extends EventEmitter {
  isPackaged = false;
  name = 'electron';
  requestSingleInstanceLock(): boolean {
    return fake.singleInstance;
  }
  setName(name: string): void {
    this.name = name;
  }
  enableSandbox(): void {
    fake.sandboxEnabled = true;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  /** As Electron does: 'before-quit' first; the quit happens unless a listener prevents it. */
  quit(): void {
    fake.quitCalls++;
    let prevented = false;
    this.emit('before-quit', {
      preventDefault: () => {
        prevented = true;
      },
    });
    if (!prevented) fake.quitted = true;
  }
  exit(code = 0): void {
    fake.exitCode = code;
  }
}

export const app = new FakeApp();

export const ipcMain = new EventEmitter();

export const dialog = {
  showMessageBox(...args: any[]): Promise<{ response: number; checkboxChecked: boolean }> {
    const options = args.length > 1 ? args[1] : args[0];
    fake.dialogs.push(options);
    return Promise.resolve({ response: fake.dialogResponse, checkboxChecked: false });
  },
};

export const Menu = {
  buildFromTemplate(template: MenuTemplateItem[]) {
    return { template };
  },
  setApplicationMenu(menu: { template: MenuTemplateItem[] }) {
    fake.applicationMenu = menu;
  },
};

export const nativeImage = {
  createFromPath(path: string) {
    return { path };
  },
};

export const shell = {
  openExternal(url: string): Promise<void> {
    fake.openedExternally.push(url);
    return Promise.resolve();
  },
};

const sessionEvents = new EventEmitter();
export const session = {
  defaultSession: {
    setPermissionRequestHandler(handler: Handler) {
      fake.session.permissionRequest = handler;
    },
    setPermissionCheckHandler(handler: Handler) {
      fake.session.permissionCheck = handler;
    },
    setDevicePermissionHandler(handler: Handler) {
      fake.session.devicePermission = handler;
    },
    on(event: string, handler: Handler) {
      sessionEvents.on(event, handler);
      if (event === 'will-download') fake.session.willDownload = handler;
    },
    webRequest: {
      onHeadersReceived(filter: { urls: string[] }, handler: Handler) {
        fake.session.headersFilter = filter;
        fake.session.headersReceived = handler;
      },
    },
  },
};

export const fake = {
  singleInstance: true,
  sandboxEnabled: false,
  quitCalls: 0,
  quitted: false,
  exitCode: null as number | null,
  dialogResponse: 0,
  dialogs: [] as any[],
  windows: [] as BrowserWindow[],
  trays: [] as Tray[],
  applicationMenu: null as { template: MenuTemplateItem[] } | null,
  openedExternally: [] as string[],
  session: {} as Record<string, any>,
  reset(): void {
    this.singleInstance = true;
    this.sandboxEnabled = false;
    this.quitCalls = 0;
    this.quitted = false;
    this.exitCode = null;
    this.dialogResponse = 0;
    this.dialogs = [];
    this.windows = [];
    this.trays = [];
    this.applicationMenu = null;
    this.openedExternally = [];
    this.session = {};
    app.removeAllListeners();
    ipcMain.removeAllListeners();
    sessionEvents.removeAllListeners();
  },
};
