// The left nav: the pages as links (so they are links to assistive tech and tests alike), and the
// VM's state at a glance.
import { PAGES, hashFor, type PageId } from '../routes.ts';
import { useVm } from '../services.ts';
import { StateDot } from './StateBadge.tsx';

export function Nav({ current }: { current: PageId }) {
  const state = useVm((s) => s.status?.state);
  return (
    <nav className="nav" aria-label="Berth">
      <div className="nav-brand">
        <BerthMark />
        <span>Berth</span>
      </div>
      <ul className="nav-list">
        {PAGES.map((page) => (
          <li key={page.id}>
            <a
              className="nav-link"
              href={hashFor(page.id)}
              aria-current={page.id === current ? 'page' : undefined}
            >
              {page.title}
            </a>
          </li>
        ))}
      </ul>
      <div className="nav-footer" aria-hidden="true">
        {state && (
          <>
            <StateDot state={state} /> VM {state}
          </>
        )}
      </div>
    </nav>
  );
}

function BerthMark() {
  return (
    <svg className="nav-mark" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d="M3 15h18l-2.5 5h-13z" />
      <path d="M6 12h4V8H6zm5 0h4V8h-4zm-5-5h4V3H6z" />
    </svg>
  );
}
