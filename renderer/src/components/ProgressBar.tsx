// A long operation's step and how far it is, from event.progress.
import type { ProgressEvent } from '../../../core/api/types.ts';

export function ProgressBar({ progress, label }: { progress: ProgressEvent; label: string }) {
  const percent = Math.max(0, Math.min(100, Math.round(progress.percent)));
  return (
    <div className="progress">
      <div className="progress-text">
        <span>{progress.step}</span>
        <span className="muted">{percent}%</span>
      </div>
      <progress max={100} value={percent} aria-label={label} />
    </div>
  );
}
