// The window: a left nav, a banner while the connection is down, notices, the current page.
// The console page stays mounted once opened, so its sessions and scrollback survive navigation.
import { useEffect, useState } from 'react';
import { ConnectionBanner } from './components/ConnectionBanner.tsx';
import { Nav } from './components/Nav.tsx';
import { Notices } from './components/Notices.tsx';
import { ConsolePage } from './pages/ConsolePage.tsx';
import { DashboardPage } from './pages/DashboardPage.tsx';
import { LogsPage } from './pages/LogsPage.tsx';
import { SettingsPage } from './pages/SettingsPage.tsx';
import { PAGES, pageFromHash, type PageId } from './routes.ts';

function useHashPage(): PageId {
  const [page, setPage] = useState(() => pageFromHash(window.location.hash));
  useEffect(() => {
    const follow = () => setPage(pageFromHash(window.location.hash));
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  return page;
}

export function App() {
  const page = useHashPage();
  const [consoleOpened, setConsoleOpened] = useState(page === 'console');
  useEffect(() => {
    if (page === 'console') setConsoleOpened(true);
    document.title = `${PAGES.find((p) => p.id === page)?.title ?? ''} · Berth`;
  }, [page]);

  return (
    <div className="app">
      <Nav current={page} />
      <div className="main">
        <ConnectionBanner />
        <Notices />
        <main className="page">
          {page === 'dashboard' && <DashboardPage />}
          {page === 'settings' && <SettingsPage />}
          {consoleOpened && <ConsolePage active={page === 'console'} />}
          {page === 'logs' && <LogsPage />}
        </main>
      </div>
    </div>
  );
}
