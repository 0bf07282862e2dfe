// Reset to factory, behind a modal that says exactly what is lost and what is kept. The native
// <dialog> gives focus trapping, Escape and the inert background for free; while the reset runs it
// cannot be dismissed and shows the reset's progress.
import { useEffect, useRef } from 'react';
import { ProgressBar } from '../../components/ProgressBar.tsx';
import { useServices, useVm } from '../../services.ts';

export function ResetDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { actions } = useServices();
  const dialog = useRef<HTMLDialogElement>(null);
  const resetting = useVm((s) => s.action === 'reset');
  const progress = useVm((s) => s.progress.reset);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);

  const reset = async () => {
    const result = await actions.reset();
    if (result) onClose();
  };

  return (
    <dialog
      ref={dialog}
      className="dialog"
      aria-labelledby="reset-title"
      aria-describedby="reset-description"
      onCancel={(event) => {
        event.preventDefault(); // Escape: closing is ours to do, and not while resetting
        if (!resetting) onClose();
      }}
    >
      <h2 id="reset-title">Reset to factory settings?</h2>
      <div id="reset-description">
        <p>The VM stops, and Berth deletes:</p>
        <ul className="loss-list">
          <li>
            <strong>The data disk</strong>: everything in the VM&apos;s <code>/var</code>, including
            containers and images.
          </li>
          <li>
            <strong>The current settings</strong>: CPUs, memory, disk size and storage driver go
            back to their defaults.
          </li>
        </ul>
        <p className="muted">
          The settings history is kept: it is saved to a backup file first. If the VM was running,
          it starts again with a fresh disk.
        </p>
      </div>
      {resetting && (
        <ProgressBar
          progress={progress ?? { operation: 'reset', step: 'starting the reset', percent: 0 }}
          label="Reset progress"
        />
      )}
      <div className="dialog-actions">
        <button type="button" className="button" autoFocus disabled={resetting} onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="button button-danger"
          disabled={resetting}
          onClick={() => void reset()}
        >
          Reset
        </button>
      </div>
    </dialog>
  );
}
