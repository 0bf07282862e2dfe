// Which URLs Berth's windows may show, and which links may leave for the user's browser. Every
// check parses with the WHATWG URL parser (never a string prefix on the raw text), so "..",
// percent-encoded dots, query strings and fragments cannot smuggle a page in from elsewhere.
// No electron import: unit-tested.
import { pathToFileURL } from 'node:url';

/** The file:// URL of a directory, always ending in "/" (the renderer's root). */
export function directoryUrl(directory: string): string {
  const href = pathToFileURL(directory).href;
  return href.endsWith('/') ? href : `${href}/`;
}

/**
 * True when `url` is a file:// URL (local, no host) at or below `rootUrl` (from directoryUrl).
 * The comparison is on the parsed, normalised path, so ../ escapes are resolved first.
 */
export function isRendererUrl(url: string, rootUrl: string): boolean {
  const page = parse(url);
  const root = parse(rootUrl);
  if (!page || !root || page.protocol !== 'file:' || root.protocol !== 'file:') return false;
  if (page.host !== '' || root.host !== '') return false;
  const rootPath = root.pathname.endsWith('/') ? root.pathname : `${root.pathname}/`;
  return page.pathname.startsWith(rootPath) && !/%2f|%5c/i.test(page.pathname);
}

/**
 * Links the renderer may hand to the user's browser (shell.openExternal): https with a host, or
 * http to 127.0.0.1 (where containers' published ports answer: the dashboard links them), and no
 * credentials. Everything else (plain http elsewhere, file:, javascript:, custom schemes that
 * start other programs) is refused: checklist item 15.
 */
export function isSafeExternalUrl(url: string): boolean {
  const parsed = parse(url);
  if (parsed === null || parsed.username !== '' || parsed.password !== '') return false;
  if (parsed.protocol === 'https:') return parsed.hostname !== '';
  return parsed.protocol === 'http:' && parsed.hostname === '127.0.0.1';
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
