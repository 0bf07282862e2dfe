// Console: a shell in the VM and one on the host, as tabs. Both stay mounted once opened (hidden
// when not shown), so switching tabs or pages keeps the sessions and their scrollback.
import { useState, type KeyboardEvent } from 'react';
import { HostTerminal } from '../terminal/HostTerminal.tsx';
import { VmConsole } from '../terminal/VmConsole.tsx';

const TABS = [
  { id: 'vm', title: 'VM console' },
  { id: 'host', title: 'Host terminal' },
] as const;
type TabId = (typeof TABS)[number]['id'];

export function ConsolePage({ active }: { active: boolean }) {
  const [tab, setTab] = useState<TabId>('vm');
  const [hostOpened, setHostOpened] = useState(false);
  const select = (id: TabId) => {
    setTab(id);
    if (id === 'host') setHostOpened(true);
  };
  // Arrow keys move between tabs, as the ARIA tabs pattern expects.
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const index = TABS.findIndex((t) => t.id === tab);
    const next = TABS[(index + (event.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    if (next) {
      select(next.id);
      document.getElementById(`tab-${next.id}`)?.focus();
    }
  };

  return (
    <div className="page-body page-console" hidden={!active}>
      <header className="page-header">
        <div className="page-heading">
          <h1>Console</h1>
        </div>
        <div className="tabs" role="tablist" aria-label="Terminals" onKeyDown={onKeyDown}>
          {TABS.map((t) => (
            <button
              key={t.id}
              id={`tab-${t.id}`}
              type="button"
              role="tab"
              className="tab"
              aria-selected={tab === t.id}
              aria-controls={`panel-${t.id}`}
              tabIndex={tab === t.id ? 0 : -1}
              onClick={() => select(t.id)}
            >
              {t.title}
            </button>
          ))}
        </div>
      </header>
      <div
        id="panel-vm"
        role="tabpanel"
        aria-labelledby="tab-vm"
        className="tab-panel"
        hidden={tab !== 'vm'}
      >
        <VmConsole active={active && tab === 'vm'} />
      </div>
      <div
        id="panel-host"
        role="tabpanel"
        aria-labelledby="tab-host"
        className="tab-panel"
        hidden={tab !== 'host'}
      >
        {hostOpened && <HostTerminal active={active && tab === 'host'} />}
      </div>
      <p className="muted console-hint">
        Copy: select, then Ctrl+Shift+C or right-click. Paste: Ctrl+Shift+V or right-click.
      </p>
    </div>
  );
}
