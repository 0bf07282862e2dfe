// Copy and paste for a terminal, where Ctrl+C and Ctrl+V belong to the shell. Copy prefers the
// async Clipboard API and falls back to a copy event (xterm answers it with the selection), which
// needs no permission; paste from a menu needs the Clipboard API, since only it can read.
import type { Terminal } from '@xterm/xterm';

export async function copySelection(term: Terminal): Promise<boolean> {
  const text = term.getSelection();
  if (!text) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    term.textarea?.focus();
    // Deprecated but still the one permission-free way to fire a copy event from a key or click.
    return document.execCommand('copy');
  }
}

export async function pasteClipboard(term: Terminal): Promise<boolean> {
  try {
    const text = await navigator.clipboard.readText();
    if (text) term.paste(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Ctrl+Shift+C copies the selection; Ctrl+Shift+V is left to the browser, whose "paste as plain
 * text" fires a paste event that xterm feeds through term.paste(), with no clipboard permission.
 * Returns false for keys xterm must not turn into input.
 */
export function clipboardKeys(term: Terminal): (event: KeyboardEvent) => boolean {
  return (event) => {
    if (!event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return true;
    const key = event.key.toLowerCase();
    if (key === 'c') {
      if (event.type === 'keydown' && term.hasSelection()) {
        event.preventDefault(); // in a browser, Ctrl+Shift+C would open the element inspector
        void copySelection(term);
      }
      return false;
    }
    return key !== 'v';
  };
}
