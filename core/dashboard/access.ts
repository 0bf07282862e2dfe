// Who may use the dashboard. It listens on loopback, but any web page the user visits can send
// requests to 127.0.0.1, and a DNS-rebinding page can even make them look same-origin; so every
// request must name this server in its Host header, the page and the API need the access token
// printed in the URL, and a WebSocket must come from this server's own pages (Origin).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** 32 random bytes, base64url: safe in a URL as is. */
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
   * Checks the Host header and, where `needsToken`, the token in the URL's query. There is no
   * cookie on purpose: a cookie for 127.0.0.1 goes to every local port, so any other local
   * server the browser visits would receive it. The page and the API need the token; the
   * bundle's scripts and styles are the app's public code and load without it.
   */
  check(request: IncomingMessage, url: URL, needsToken = true): Refusal | null {
    if (!this.hosts.includes(request.headers.host ?? '')) {
      return {
        status: 403,
        text: 'wrong Host header: open the dashboard by the URL Berth printed',
      };
    }
    if (!needsToken) return null;
    const given = url.searchParams.get('token') || null;
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
    return null;
  }

  checkOrigin(request: IncomingMessage): Refusal | null {
    const origin = request.headers.origin;
    if (origin !== undefined && this.hosts.some((host) => origin === `http://${host}`)) return null;
    return { status: 403, text: 'WebSocket refused: it did not come from this dashboard' };
  }
}

/** Compares in constant time; hashing first makes the lengths equal, as timingSafeEqual needs. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
