// Browser mode: the dashboard's URL carries its access token (`dashboard.open` makes it), either as
// ?token= or #token=. The renderer's own links use the hash for pages, so the token is read once
// at load and kept for the tab's life (reconnects, reloads after navigating).
export const TOKEN_STORAGE_KEY = 'berth.token';

/** The token in a URL's query or fragment, or null when neither has one. */
export function tokenFromUrl(search: string, hash: string): string | null {
  const fromQuery = new URLSearchParams(search).get('token');
  if (fromQuery) return fromQuery;
  const fragment = hash.startsWith('#') ? hash.slice(1) : hash;
  // A page route (#/settings) is not a parameter list.
  if (fragment.startsWith('/')) return null;
  return new URLSearchParams(fragment).get('token') || null;
}

/** The API's WebSocket on the host that served the page; wss when the page came over https. */
export function apiSocketUrl(
  location: { protocol: string; host: string },
  token: string | null,
): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${scheme}://${location.host}/api${query}`;
}
