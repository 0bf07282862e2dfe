// Every Berth window is created here, with the defaults of Electron's security checklist:
// context isolation, the sandbox, no Node in the renderer, no navigation away from our pages,
// no new windows, and every permission request denied.
import { BrowserWindow, type Session, shell } from 'electron';

export interface SecureWindowOptions {
  title: string;
  width: number;
  height: number;
  preload: string;
  /** The only origin the window may show (file:// for the packaged renderer). */
  allowedOrigin: string;
}

/** Denies every permission (camera, notifications, ...) and every permission check. */
export function hardenSession(session: Session): void {
  session.setPermissionRequestHandler((_webContents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
}

export function createSecureWindow(options: SecureWindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    title: options.title,
    width: options.width,
    height: options.height,
    show: false,
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  const contents = window.webContents;
  contents.on('will-navigate', (event, url) => {
    if (new URL(url).origin !== options.allowedOrigin) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  // Links to the web open in the user's browser, never in an Electron window.
  contents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  window.once('ready-to-show', () => window.show());
  return window;
}
