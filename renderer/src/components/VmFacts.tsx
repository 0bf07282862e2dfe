// The running VM's facts: the backend and why it was chosen, uptime, the VMM's pid, where its data is.
import { useEffect, useState } from 'react';
import type { VmStatus } from '../../../core/api/types.ts';
import { formatDuration } from '../format.ts';
import { useVm } from '../services.ts';

export function VmFacts() {
  const status = useVm((s) => s.status);
  const uptime = useUptime(status);
  return (
    <section className="panel" aria-labelledby="facts-title">
      <h2 id="facts-title" className="panel-title">
        Virtual machine
      </h2>
      <dl className="facts">
        <div>
          <dt>Backend</dt>
          <dd>
            {status?.backend ?? '–'}
            {status?.backendReason && <span className="fact-note">{status.backendReason}</span>}
          </dd>
        </div>
        <div>
          <dt>Uptime</dt>
          <dd data-testid="vm-uptime">{uptime === null ? '–' : formatDuration(uptime)}</dd>
        </div>
        <div>
          <dt>VMM process</dt>
          <dd>{status?.vmmPid !== undefined ? `pid ${status.vmmPid}` : '–'}</dd>
        </div>
        <div>
          <dt>Data directory</dt>
          <dd className="mono">{status?.dataDirectory || '–'}</dd>
        </div>
      </dl>
    </section>
  );
}

/** Uptime, ticking each second while running (counted from when the VM entered running). */
function useUptime(status: VmStatus | null): number | null {
  const running = status?.state === 'running';
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [running]);
  if (!status || !running) return null;
  return status.since > 0 ? now - status.since : (status.uptimeMs ?? null);
}
