// Start, Stop and Restart, each enabled only when it makes sense in the VM's state, all waiting
// while one lifecycle call is in flight.
import type { VmState } from '../../../core/api/types.ts';
import { useLink, useServices, useVm } from '../services.ts';

const ALLOWED: Record<'start' | 'stop' | 'restart', readonly VmState[]> = {
  start: ['stopped', 'error'],
  stop: ['starting', 'running'],
  restart: ['running', 'error'],
};

export function LifecycleButtons() {
  const { actions } = useServices();
  const state = useVm((s) => s.status?.state);
  const action = useVm((s) => s.action);
  // While disconnected a click could only fail; the banner says why.
  const connected = useLink((s) => s.link.state === 'connected');
  const enabled = (name: keyof typeof ALLOWED) =>
    connected && action === null && state !== undefined && ALLOWED[name].includes(state);

  return (
    <div className="button-row" role="group" aria-label="VM lifecycle">
      <button
        type="button"
        className="button button-primary"
        disabled={!enabled('start')}
        onClick={() => void actions.lifecycle('start')}
      >
        Start
      </button>
      <button
        type="button"
        className="button"
        disabled={!enabled('stop')}
        onClick={() => void actions.lifecycle('stop')}
      >
        Stop
      </button>
      <button
        type="button"
        className="button"
        disabled={!enabled('restart')}
        onClick={() => void actions.lifecycle('restart')}
      >
        Restart
      </button>
    </div>
  );
}
