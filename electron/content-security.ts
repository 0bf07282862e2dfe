// The Content-Security-Policy of what Berth's windows show. The renderer (file://) carries its
// own policy in renderer/index.html's <meta> tag, since a file:// load has no response headers
// to set. Any http(s) response a window receives (it should receive none: navigation is limited
// to the renderer's root) gets the strictest policy as a header, in place of the server's.
// No electron import: unit-tested.

/** For pages that are not ours: nothing of theirs may run or load. */
export const FOREIGN_CSP = "default-src 'none'; frame-ancestors 'none'";

export type ResponseHeaders = Record<string, string[] | string>;

/**
 * The response headers to keep for `url`: http(s) responses lose any policy of their own (in any
 * letter case) and get FOREIGN_CSP; other schemes pass through unchanged.
 */
export function withContentSecurityPolicy(
  url: string,
  headers: ResponseHeaders | undefined,
): ResponseHeaders {
  const result: ResponseHeaders = { ...(headers ?? {}) };
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') return result;
  for (const name of Object.keys(result)) {
    if (/^content-security-policy(-report-only)?$/i.test(name)) delete result[name];
  }
  result['Content-Security-Policy'] = [FOREIGN_CSP];
  return result;
}
