// The box a terminal lives in, with a small Copy / Paste context menu (Electron has no default
// one, and the browser's would not know about xterm's selection).
import type { Terminal } from '@xterm/xterm';
import { useEffect, useState, type MouseEvent, type RefObject } from 'react';
import { useServices } from '../services.ts';
import { notify } from '../state/stores.ts';
import { copySelection, pasteClipboard } from './clipboard.ts';

/** The menu's size (see .context-menu), to keep it inside the frame. */
const MENU_WIDTH = 210;
const MENU_HEIGHT = 80;

interface MenuAt {
  x: number;
  y: number;
  canCopy: boolean;
}

export function TerminalSurface({
  containerRef,
  term,
  label,
  testId,
}: {
  containerRef: RefObject<HTMLDivElement | null>;
  term: Terminal | null;
  label: string;
  testId: string;
}) {
  const { stores } = useServices();
  const [menu, setMenu] = useState<MenuAt | null>(null);

  useEffect(() => {
    if (!menu) return;
    const close = () => setMenu(null);
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') close();
    };
    window.addEventListener('pointerdown', close);
    window.addEventListener('keydown', onKey);
    window.addEventListener('blur', close);
    return () => {
      window.removeEventListener('pointerdown', close);
      window.removeEventListener('keydown', onKey);
      window.removeEventListener('blur', close);
    };
  }, [menu]);

  const openMenu = (event: MouseEvent<HTMLDivElement>) => {
    if (!term) return;
    event.preventDefault();
    const box = event.currentTarget.getBoundingClientRect();
    // Kept inside the frame, so a click near its right or bottom edge still shows the whole menu.
    setMenu({
      x: Math.max(0, Math.min(event.clientX - box.left, box.width - MENU_WIDTH)),
      y: Math.max(0, Math.min(event.clientY - box.top, box.height - MENU_HEIGHT)),
      canCopy: term.hasSelection(),
    });
  };

  const run = (action: 'copy' | 'paste') => {
    setMenu(null);
    if (!term) return;
    if (action === 'copy') void copySelection(term);
    else
      void pasteClipboard(term).then((ok) => {
        if (!ok)
          notify(
            stores,
            'error',
            'The clipboard cannot be read here: press Ctrl+Shift+V to paste.',
          );
      });
    term.focus();
  };

  return (
    <div className="terminal-frame" onContextMenu={openMenu}>
      <div
        ref={containerRef}
        className="terminal-box"
        data-testid={testId}
        role="region"
        aria-label={label}
      />
      {menu && (
        <div
          className="context-menu"
          role="menu"
          style={{ left: menu.x, top: menu.y }}
          // Keeps the window's pointerdown (which closes the menu) from firing before the click.
          onPointerDown={(event) => event.stopPropagation()}
        >
          <button
            type="button"
            role="menuitem"
            disabled={!menu.canCopy}
            onClick={() => run('copy')}
          >
            Copy <kbd>Ctrl+Shift+C</kbd>
          </button>
          <button type="button" role="menuitem" onClick={() => run('paste')}>
            Paste <kbd>Ctrl+Shift+V</kbd>
          </button>
        </div>
      )}
    </div>
  );
}
