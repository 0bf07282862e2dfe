// Every settings commit, newest first: when, who, what changed; any earlier revision can be
// restored (as a new commit, so history only grows). Restoring never restarts the VM by itself.
import { useState } from 'react';
import type { SettingsCommit } from '../../../../core/api/types.ts';
import { FIELD_LABELS, formatSettingValue } from '../../format.ts';
import { useServices, useSettings } from '../../services.ts';

const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function SettingsHistory() {
  const history = useSettings((s) => s.history);
  const current = useSettings((s) => s.view?.revision);
  return (
    <section className="panel" aria-labelledby="history-title">
      <h2 id="history-title" className="panel-title">
        History
      </h2>
      {history.length === 0 ? (
        <p className="muted">No changes yet.</p>
      ) : (
        <ol className="history">
          {history.map((commit) => (
            <HistoryEntry
              key={commit.revision}
              commit={commit}
              current={commit.revision === current}
            />
          ))}
        </ol>
      )}
    </section>
  );
}

function HistoryEntry({ commit, current }: { commit: SettingsCommit; current: boolean }) {
  const { actions } = useServices();
  const [busy, setBusy] = useState(false);
  const rollBack = async () => {
    setBusy(true);
    await actions.rollback(commit.revision);
    setBusy(false);
  };
  return (
    <li className="history-entry">
      <div className="history-main">
        <div className="history-head">
          <span className="history-revision">Revision {commit.revision}</span>
          {current && <span className="tag">current</span>}
          <span className="muted">
            <time dateTime={commit.time}>{TIME.format(new Date(commit.time))}</time> ·{' '}
            {describeSource(commit)}
          </span>
        </div>
        {commit.message && <p className="history-message">{commit.message}</p>}
        {commit.diff.length > 0 && (
          <ul className="diff" aria-label="Changes">
            {commit.diff.map((entry) => (
              <li key={entry.field}>
                <span className="diff-field">{FIELD_LABELS[entry.field]}</span>{' '}
                <span className="diff-from">{formatSettingValue(entry.field, entry.from)}</span>
                <span aria-label="to"> → </span>
                <span className="diff-to">{formatSettingValue(entry.field, entry.to)}</span>
              </li>
            ))}
          </ul>
        )}
      </div>
      {!current && (
        <button
          type="button"
          className="button button-small"
          disabled={busy}
          aria-label={`Roll back to revision ${commit.revision}`}
          onClick={() => void rollBack()}
        >
          Roll back
        </button>
      )}
    </li>
  );
}

function describeSource(commit: SettingsCommit): string {
  const by = commit.requestedBy ? ` (${commit.requestedBy === 'gui' ? 'app' : 'CLI'})` : '';
  switch (commit.source) {
    case 'gui':
      return 'changed in the app';
    case 'cli':
      return 'changed with the CLI';
    case 'init':
      return 'first settings';
    case 'reset':
      return `reset to factory${by}`;
    case 'rollback':
      return `rolled back${commit.restoredRevision !== undefined ? ` to revision ${commit.restoredRevision}` : ''}${by}`;
  }
}
