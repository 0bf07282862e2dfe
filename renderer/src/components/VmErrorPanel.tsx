// When the VM failed (or a lifecycle call did), say so where the user looks: what happened, the
// guest's last words, and what to do next.
import { useVm } from '../services.ts';

export function VmErrorPanel() {
  const error = useVm((s) => (s.status?.state === 'error' ? s.status.error : undefined));
  const failure = useVm((s) => s.failure);
  const message = error?.message ?? failure?.message;
  if (!message) return null;
  const serialTail = error?.serialTail ?? failure?.serialTail;
  const failedAction = !error && failure ? failure.action : null;
  return (
    <section className="panel panel-error" role="alert" aria-labelledby="vm-error-title">
      <h2 id="vm-error-title" className="panel-title">
        {failedAction ? `Could not ${failedAction} the VM` : 'The VM stopped with an error'}
      </h2>
      <p className="error-message">{message}</p>
      {error?.exitReason && <p className="muted">The VMM process ended: {error.exitReason}.</p>}
      <p>
        What to do: press <strong>Restart</strong> (or <strong>Start</strong>). If it fails again,
        check the memory and CPUs in Settings, read the serial log below, or reset to factory.
      </p>
      {serialTail && (
        <details className="serial-tail">
          <summary>Serial log (last lines)</summary>
          <pre>{serialTail}</pre>
        </details>
      )}
    </section>
  );
}
