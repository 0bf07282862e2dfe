// Mounts an xterm.js terminal in a container and binds it to a PtySession: sized by FitAddon to
// the container (a ResizeObserver refits, and the session's pty follows), themed with the OS.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useState, type RefObject } from 'react';
import { clipboardKeys } from './clipboard.ts';
import type { PtyChannel } from './pty-channel.ts';
import { PtySession, type PtySessionState } from './pty-session.ts';
import { openWithConstructedStyles } from './xterm-styles.ts';
import { DARK_QUERY, themeFor } from './xterm-theme.ts';

const FONT_FAMILY =
  'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace';

export interface TerminalBinding {
  session: PtySession | null;
  term: Terminal | null;
  state: PtySessionState;
}

export function useTerminalSession(
  container: RefObject<HTMLDivElement | null>,
  channel: PtyChannel,
): TerminalBinding {
  const [binding, setBinding] = useState<{ session: PtySession; term: Terminal } | null>(null);
  const [state, setState] = useState<PtySessionState>('idle');

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const dark = window.matchMedia(DARK_QUERY);
    const term = new Terminal({
      fontFamily: FONT_FAMILY,
      fontSize: 13,
      lineHeight: 1.15,
      cursorBlink: true,
      scrollback: 5000,
      theme: themeFor(dark.matches),
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    const dropStyles = openWithConstructedStyles(term, element);
    term.attachCustomKeyEventHandler(clipboardKeys(term));

    const session = new PtySession(term, channel);
    const offState = session.onState(setState);
    const resized = term.onResize((size) => session.resize(size));
    // A hidden container (another tab, another page) has no size to fit to.
    const refit = () => {
      if (element.clientWidth > 0 && element.clientHeight > 0) fit.fit();
    };
    refit();
    const observer = new ResizeObserver(refit);
    observer.observe(element);
    const retheme = () => {
      term.options.theme = themeFor(dark.matches);
    };
    dark.addEventListener('change', retheme);
    setBinding({ session, term });

    return () => {
      dark.removeEventListener('change', retheme);
      observer.disconnect();
      resized.dispose();
      offState();
      session.dispose();
      term.dispose();
      dropStyles();
      setBinding(null);
    };
  }, [container, channel]);

  return { session: binding?.session ?? null, term: binding?.term ?? null, state };
}
