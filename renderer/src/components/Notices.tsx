// Short messages about what just happened (saved, rolled back, a call failed). Information fades
// after a while; errors stay until dismissed.
import { useEffect } from 'react';
import { dismissNotice, type Notice } from '../state/stores.ts';
import { useNotices, useServices } from '../services.ts';

const INFO_MS = 8000;

export function Notices() {
  const notices = useNotices((s) => s.notices);
  return (
    <div className="notices" role="status" aria-live="polite">
      {notices.map((notice) => (
        <NoticeItem key={notice.id} notice={notice} />
      ))}
    </div>
  );
}

function NoticeItem({ notice }: { notice: Notice }) {
  const { stores } = useServices();
  useEffect(() => {
    if (notice.kind !== 'info') return;
    const timer = setTimeout(() => dismissNotice(stores, notice.id), INFO_MS);
    return () => clearTimeout(timer);
  }, [notice, stores]);
  return (
    <div className={`notice notice-${notice.kind}`}>
      <span>{notice.text}</span>
      <button
        type="button"
        className="icon-button"
        aria-label="Dismiss"
        onClick={() => dismissNotice(stores, notice.id)}
      >
        ×
      </button>
    </div>
  );
}
