// Says when the renderer is not connected to Berth, and when it tries again.
import { useEffect, useState } from 'react';
import { useLink, useServices } from '../services.ts';

export function ConnectionBanner() {
  const { api } = useServices();
  const link = useLink((s) => s.link);
  const seconds = useSecondsUntil(link.retryAt);
  if (link.state === 'connected') return null;
  if (link.state === 'connecting') {
    return (
      <div className="banner banner-quiet" role="status">
        Connecting to Berth…
      </div>
    );
  }
  return (
    <div className="banner banner-warning" role="alert">
      <div>
        <strong>Disconnected from Berth.</strong>{' '}
        {seconds !== null && seconds > 0 ? `Reconnecting in ${seconds} s.` : 'Reconnecting…'}
        {link.reason && <span className="banner-detail"> ({link.reason})</span>}
      </div>
      <button type="button" className="button button-small" onClick={() => api.retryNow()}>
        Retry now
      </button>
    </div>
  );
}

function useSecondsUntil(at: number | undefined): number | null {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (at === undefined) return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [at]);
  return at === undefined ? null : Math.max(0, Math.ceil((at - now) / 1000));
}
