// The built renderer (build/renderer: index.html, main.js, main.css, source maps) as the
// dashboard serves it: only regular files under the root, never a dotfile, never through a
// symlink out of it, with the headers a page that drives a VM should have.
import { createReadStream, readFileSync, statSync, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** renderer/index.html's own policy, used when the built page has none (or is missing). */
export const DEFAULT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Berth</title></head>
<body><h1>Berth</h1>
<p>The dashboard's renderer is not built; run <code>npm run setup</code>, then reload this page.</p>
<p>The VM and the <code>berth</code> command work without it.</p></body></html>
`;

export class StaticFiles {
  private csp: { mtimeMs: number; policy: string } | null = null;
  private realRoot: string | null = null;

  constructor(readonly root: string) {
    this.root = resolve(root);
  }

  /**
   * Headers every response gets. The CSP is the page's own (its meta tag) sent as a header too,
   * so it also covers what the meta tag cannot (frame-ancestors) and what loads before it.
   */
  securityHeaders(): Record<string, string> {
    return {
      'Cache-Control': 'no-store',
      'Content-Security-Policy': this.contentSecurityPolicy(),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
  }

  /** Serves `pathname` (as in the URL, still percent-encoded); 404 for anything not ours. */
  async serve(
    pathname: string,
    method: 'GET' | 'HEAD',
    response: ServerResponse,
    extraHeaders: Record<string, string> = {},
  ): Promise<void> {
    const headers = { ...this.securityHeaders(), ...extraHeaders };
    const file = await this.resolve(pathname);
    if (!file) {
      if ((pathname === '/' || pathname === '/index.html') && !this.built()) {
        // Our own inline-free page, so the strictest policy fits it.
        headers['Content-Security-Policy'] = "default-src 'none'";
        send(response, 503, 'text/html; charset=utf-8', NOT_BUILT_PAGE, headers, method);
        return;
      }
      if (pathname === '/favicon.ico') {
        // Browsers ask for it whatever the page says; "no content" keeps their consoles clean.
        response.writeHead(204, headers).end();
        return;
      }
      send(response, 404, 'text/plain; charset=utf-8', 'not found\n', headers, method);
      return;
    }
    const type = CONTENT_TYPES[extname(file.path)] ?? 'application/octet-stream';
    response.writeHead(200, {
      ...headers,
      'Content-Type': type,
      'Content-Length': String(file.stats.size),
    });
    if (method === 'HEAD') {
      response.end();
      return;
    }
    await pipeline(createReadStream(file.path), response).catch(() => response.destroy());
  }

  private built(): boolean {
    try {
      return statSync(join(this.root, 'index.html')).isFile();
    } catch {
      return false;
    }
  }

  /** The file a URL path names, or null when it is not a regular file inside the root. */
  private async resolve(pathname: string): Promise<{ path: string; stats: Stats } | null> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return null; // malformed percent-encoding
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return null;
    const segments = decoded.split('/').filter((s) => s !== '');
    // `..` and dotfiles (stamps, .DS_Store) are never served; URL parsing already removed most
    // `..`, this catches what decoding brought back (e.g. %2F..).
    if (segments.some((s) => s.startsWith('.'))) return null;
    const path = resolve(this.root, ...(segments.length > 0 ? segments : ['index.html']));
    if (!path.startsWith(this.root + sep)) return null;
    try {
      this.realRoot ??= await realpath(this.root);
      const real = await realpath(path);
      if (!real.startsWith(this.realRoot + sep)) return null; // a symlink out of the root
      const stats = await stat(real);
      return stats.isFile() ? { path: real, stats } : null;
    } catch {
      this.realRoot = null; // the root may appear later (setup builds it while we run)
      return null;
    }
  }

  /** The CSP of the built index.html's meta tag, re-read when the file changes. */
  private contentSecurityPolicy(): string {
    const index = join(this.root, 'index.html');
    let mtimeMs: number;
    try {
      mtimeMs = statSync(index).mtimeMs;
    } catch {
      return headerPolicy(null);
    }
    if (this.csp?.mtimeMs !== mtimeMs) {
      let page: string;
      try {
        page = readFileSync(index, 'utf8');
      } catch {
        return headerPolicy(null); // replaced or unreadable mid-rebuild: the strict default
      }
      this.csp = { mtimeMs, policy: headerPolicy(metaPolicy(page)) };
    }
    return this.csp.policy;
  }
}

/**
 * The page's policy as a header: frame-ancestors works only there (a meta policy ignores it, so
 * the page may leave it out), and nobody frames the dashboard.
 */
export function headerPolicy(meta: string | null): string {
  const policy = meta ?? DEFAULT_CSP;
  return /(^|;)\s*frame-ancestors\b/i.test(policy)
    ? policy
    : `${policy.replace(/;\s*$/, '')}; frame-ancestors 'none'`;
}

/** The content of <meta http-equiv="Content-Security-Policy" content="...">, if the page has it. */
export function metaPolicy(html: string): string | null {
  for (const [tag] of html.matchAll(/<meta\b[^>]*>/gis)) {
    if (!/http-equiv\s*=\s*["']?content-security-policy["']?/i.test(tag)) continue;
    const content = /\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)')/i.exec(tag);
    const policy = (content?.[1] ?? content?.[2] ?? '').replace(/\s+/g, ' ').trim();
    if (policy) return policy;
  }
  return null;
}

export function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string>,
  method = 'GET',
): void {
  response.writeHead(status, {
    ...headers,
    'Content-Type': type,
    'Content-Length': String(Buffer.byteLength(body)),
  });
  response.end(method === 'HEAD' ? undefined : body);
}
