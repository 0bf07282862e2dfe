// Settings: the VM's resources, their history with rollback, and reset to factory.
import { useState } from 'react';
import { useSettings } from '../services.ts';
import { ResetDialog } from './settings/ResetDialog.tsx';
import { SettingsForm } from './settings/SettingsForm.tsx';
import { SettingsHistory } from './settings/SettingsHistory.tsx';

export function SettingsPage() {
  const view = useSettings((s) => s.view);
  const [resetOpen, setResetOpen] = useState(false);
  return (
    <div className="page-body">
      <header className="page-header">
        <div className="page-heading">
          <h1>Settings</h1>
          {view && <span className="muted">Revision {view.revision}</span>}
        </div>
      </header>
      {view?.warnings.map((warning) => (
        <div key={warning} className="callout callout-warning" role="status">
          {warning}
        </div>
      ))}
      {view ? <SettingsForm view={view} /> : <p className="muted">Loading settings…</p>}
      <SettingsHistory />
      <section className="panel panel-danger" aria-labelledby="reset-section-title">
        <h2 id="reset-section-title" className="panel-title">
          Reset to factory
        </h2>
        <div className="danger-row">
          <p>
            Deletes the data disk (containers, images, everything in <code>/var</code>) and returns
            the settings to their defaults. The settings history is kept.
          </p>
          <button
            type="button"
            className="button button-danger-outline"
            onClick={() => setResetOpen(true)}
          >
            Reset to factory…
          </button>
        </div>
      </section>
      <ResetDialog open={resetOpen} onClose={() => setResetOpen(false)} />
    </div>
  );
}
