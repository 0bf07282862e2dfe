// Which web permissions a page in a Berth window gets (checklist item 5): none, except writing
// to the clipboard from Berth's own renderer (the console's "copy"). Reading the clipboard stays
// denied: a paste arrives as a paste event, which needs no permission. No electron import:
// unit-tested.
import { isRendererUrl } from './url-policy.ts';

/** The only permissions ever granted, and only to the renderer's own pages. */
export const GRANTED_TO_RENDERER: ReadonlySet<string> = new Set(['clipboard-sanitized-write']);

export function permissionAllowed(
  permission: string,
  requestingUrl: string,
  rendererRoot: string,
): boolean {
  return GRANTED_TO_RENDERER.has(permission) && isRendererUrl(requestingUrl, rendererRoot);
}
