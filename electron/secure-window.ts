// Every Berth window is created here, with the defaults of Electron's security checklist:
// context isolation, the sandbox, no Node in the renderer, web security on, no navigation away
// from our pages, no new windows, no <webview>, no downloads, and no permission but a clipboard
// write from our own page.
// The rules themselves (which URLs, which headers) are pure modules with tests; this file only
// applies them to Electron's objects.
import { BrowserWindow, shell, type App, type Session } from 'electron';
import { withContentSecurityPolicy } from './content-security.ts';
import { permissionAllowed } from './permissions.ts';
import { isRendererUrl, isSafeExternalUrl } from './url-policy.ts';

export interface SecureWindowOptions {
  title: string;
  width: number;
  height: number;
  minWidth?: number;
  minHeight?: number;
  icon?: string;
  /** The sandboxed preload (CommonJS). */
  preload: string;
  /** DevTools (off in a packaged app). */
  devTools: boolean;
}

type Log = (line: string) => void;

/**
 * Denies every permission (camera, notifications, HID, ...) but a clipboard write from our own
 * renderer's main frame (permissions.ts), cancels every download, and gives any http(s)
 * response the strictest policy (a file:// page's policy is its meta tag: a file:// load has no
 * headers to set).
 */
export function hardenSession(session: Session, rendererRoot: string, log: Log): void {
  session.setPermissionRequestHandler((contents, permission, callback, details) => {
    const url = details.requestingUrl || contents.getURL();
    const allowed = details.isMainFrame && permissionAllowed(permission, url, rendererRoot);
    if (!allowed) log(`denied the permission ${permission} to ${url}`);
    callback(allowed);
  });
  session.setPermissionCheckHandler(
    (_contents, permission, _origin, details) =>
      details.isMainFrame &&
      permissionAllowed(permission, details.requestingUrl ?? '', rendererRoot),
  );
  session.setDevicePermissionHandler(() => false);
  session.on('will-download', (event, item) => {
    log(`refused a download of ${item.getURL()}`);
    event.preventDefault();
  });
  session.webRequest.onHeadersReceived(
    { urls: ['http://*/*', 'https://*/*'] },
    (details, callback) => {
      callback({
        responseHeaders: withContentSecurityPolicy(details.url, details.responseHeaders),
      });
    },
  );
}

/**
 * Rules for every webContents the app ever has, ours or not (a devtools page, a future view):
 * no <webview>, no new windows (https links go to the user's browser), and navigation only
 * within the renderer's root.
 */
export function hardenAllWebContents(app: App, rendererRoot: string, log: Log): void {
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-attach-webview', (event) => {
      log('refused a <webview>');
      event.preventDefault();
    });
    contents.setWindowOpenHandler(({ url }) => {
      if (isSafeExternalUrl(url)) {
        // Outside the event, as the checklist advises: the window request is denied first.
        setImmediate(() => void shell.openExternal(url));
      } else {
        log(`refused to open a window for ${url}`);
      }
      return { action: 'deny' };
    });
    const limit = (event: { preventDefault(): void }, url: string) => {
      if (isRendererUrl(url, rendererRoot)) return;
      log(`refused to navigate to ${url}`);
      event.preventDefault();
    };
    contents.on('will-navigate', (event) => limit(event, event.url));
    contents.on('will-frame-navigate', (event) => limit(event, event.url));
    contents.on('will-redirect', (event) => limit(event, event.url));
  });
}

export function createSecureWindow(options: SecureWindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    title: options.title,
    width: options.width,
    height: options.height,
    ...(options.minWidth !== undefined ? { minWidth: options.minWidth } : {}),
    ...(options.minHeight !== undefined ? { minHeight: options.minHeight } : {}),
    ...(options.icon !== undefined ? { icon: options.icon } : {}),
    show: false,
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: false,
      devTools: options.devTools,
    },
  });
  window.once('ready-to-show', () => window.show());
  return window;
}

/** Shows a window that may be hidden or minimised, and gives it the focus. */
export function bringToFront(window: BrowserWindow): void {
  if (window.isMinimized()) window.restore();
  window.show();
  window.focus();
}
