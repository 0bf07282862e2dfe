// Picks how this renderer reaches Berth: the preload's IPC bridge inside Electron, else (browser
// mode) a WebSocket to the host that served the page, authorised by the token in its URL.
import type { ApiTransport } from '../../../core/api/client.ts';
import { bridgeTransport, isBerthBridge } from './bridge-transport.ts';
import type { Dial } from './connection.ts';
import { socketTransport, whenOpen } from './socket-transport.ts';
import { TOKEN_STORAGE_KEY, apiSocketUrl, tokenFromUrl } from './token.ts';

export type TransportKind = 'electron' | 'browser';

export function chooseDial(win: Window): { kind: TransportKind; dial: Dial } {
  const bridge = (win as Window & { berth?: unknown }).berth;
  if (isBerthBridge(bridge)) {
    return { kind: 'electron', dial: async () => bridgeTransport(bridge) };
  }
  const token = browserToken(win);
  const url = apiSocketUrl(win.location, token);
  return {
    kind: 'browser',
    dial: async (): Promise<ApiTransport> => {
      const socket = new WebSocket(url);
      await whenOpen(socket);
      return socketTransport(socket);
    },
  };
}

/** The URL's token, remembered for this tab so a reload on another page still connects. */
function browserToken(win: Window): string | null {
  const fromUrl = tokenFromUrl(win.location.search, win.location.hash);
  try {
    if (fromUrl) win.sessionStorage.setItem(TOKEN_STORAGE_KEY, fromUrl);
    return fromUrl ?? win.sessionStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    return fromUrl; // storage may be disabled; the URL's token still works for this load
  }
}
