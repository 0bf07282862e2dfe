// Who may use the dashboard. It listens on loopback, but any web page the user visits can send
// requests to 127.0.0.1, and a DNS-rebinding page can even make them look same-origin; so every
// request must carry the access token (printed in the URL, then kept in a cookie), name this
// server in its Host header, and a WebSocket must come from this server's own pages (Origin).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_COOKIE = 'berth_token';

/** 32 random bytes, base64url: safe in a URL and a cookie as is. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export type Refusal = { status: 401 | 403; text: string };

export class DashboardAccess {
  constructor(
    private readonly token: string,
    private readonly port: number,
  ) {}

  /** The host names this server answers to; anything else is another site's name for us. */
  private get hosts(): string[] {
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`];
  }

  /**
   * Checks the Host header and the token. `fromQuery` tells whether the query's token was the
   * one that matched (then the caller refreshes the cookie).
   */
  check(request: IncomingMessage, url: URL): Refusal | { fromQuery: boolean } {
    if (!this.hosts.includes(request.headers.host ?? '')) {
      return {
        status: 403,
        text: 'wrong Host header: open the dashboard by the URL Berth printed',
      };
    }
    // The query wins over the cookie: a cookie is shared by every port of 127.0.0.1, so it may
    // hold the token of another Berth dashboard, while the URL's is the one the user opened.
    // An empty `?token=` (a page reloaded without it) counts as none, so the cookie decides.
    const query = url.searchParams.get('token') || null;
    const given = query ?? readCookie(request.headers.cookie, TOKEN_COOKIE);
    if (given === null) {
      return {
        status: 401,
        text: 'this dashboard needs its access token: open the URL that `berth dashboard` prints',
      };
    }
    if (!sameSecret(given, this.token)) {
      return {
        status: 403,
        text: 'wrong access token (from an earlier run?): open the URL that `berth dashboard` prints',
      };
    }
    return { fromQuery: query !== null };
  }

  /** A WebSocket must be opened by a page of this very server (browsers always send Origin). */
  checkOrigin(request: IncomingMessage): Refusal | null {
    const origin = request.headers.origin;
    if (origin !== undefined && this.hosts.some((host) => origin === `http://${host}`)) return null;
    return { status: 403, text: 'WebSocket refused: it did not come from this dashboard' };
  }

  cookie(): string {
    // HttpOnly: page scripts never see it; SameSite=Strict: other sites' requests never carry it.
    return `${TOKEN_COOKIE}=${this.token}; Path=/; HttpOnly; SameSite=Strict`;
  }
}

/** Compares in constant time; hashing first makes the lengths equal, as timingSafeEqual needs. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function readCookie(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
