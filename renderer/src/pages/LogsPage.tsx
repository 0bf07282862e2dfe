// The VM's serial log, live: the last lines at open, then what the guest prints. While "Follow"
// is on the view stays at the bottom; scrolling up to read turns it off.
import { useLayoutEffect, useRef, useState } from 'react';
import { useSerial } from '../services.ts';

/** How close to the bottom (px) still counts as "at the bottom". */
const BOTTOM_SLACK = 24;

export function LogsPage() {
  const text = useSerial((s) => s.text);
  const path = useSerial((s) => s.path);
  const loaded = useSerial((s) => s.loaded);
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);

  useLayoutEffect(() => {
    const element = pre.current;
    if (follow && element) element.scrollTop = element.scrollHeight;
  }, [text, follow]);

  const onScroll = () => {
    const element = pre.current;
    if (!element) return;
    const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < BOTTOM_SLACK;
    if (follow !== atBottom) setFollow(atBottom);
  };

  return (
    <div className="page-body page-logs">
      <header className="page-header">
        <div className="page-heading">
          <h1>Logs</h1>
          {path && <span className="muted mono">{path}</span>}
        </div>
        <label className="toggle">
          <input
            type="checkbox"
            checked={follow}
            onChange={(event) => setFollow(event.target.checked)}
          />
          Follow
        </label>
      </header>
      <pre
        ref={pre}
        className="log"
        data-testid="serial-log"
        tabIndex={0}
        aria-label="Serial log"
        onScroll={onScroll}
      >
        {loaded ? text || 'The serial log is empty.' : 'Loading…'}
      </pre>
    </div>
  );
}
