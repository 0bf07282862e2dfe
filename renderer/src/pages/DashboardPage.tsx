// The dashboard: the VM's state and controls, progress while it starts or stops, what went wrong
// if it failed, settings waiting for a restart, its resource use, and (while it runs) its
// container engine.
import { ProgressBar } from '../components/ProgressBar.tsx';
import { EngineCard } from '../components/EngineCard.tsx';
import { LifecycleButtons } from '../components/LifecycleButtons.tsx';
import { ResourceCharts } from '../components/ResourceCharts.tsx';
import { StateBadge } from '../components/StateBadge.tsx';
import { VmErrorPanel } from '../components/VmErrorPanel.tsx';
import { VmFacts } from '../components/VmFacts.tsx';
import { listFields } from '../format.ts';
import { useVm } from '../services.ts';

export function DashboardPage() {
  const state = useVm((s) => s.status?.state);
  const image = useVm((s) => s.progress.image);
  const start = useVm((s) => s.progress.start);
  const stop = useVm((s) => s.progress.stop);
  const pending = useVm((s) => s.status?.pendingRestart);

  return (
    <div className="page-body">
      <header className="page-header">
        <div className="page-heading">
          <h1>Dashboard</h1>
          <StateBadge state={state} />
        </div>
        <LifecycleButtons />
      </header>

      {image && <ProgressBar progress={image} label="Factory image build" />}
      {start && <ProgressBar progress={start} label="Start progress" />}
      {stop && <ProgressBar progress={stop} label="Stop progress" />}
      <VmErrorPanel />
      {pending && pending.length > 0 && state !== 'stopped' && (
        <div className="callout" role="status">
          The new {listFields(pending)} setting{pending.length > 1 ? 's take' : ' takes'} effect
          when the VM restarts.
        </div>
      )}

      <div className="dashboard-grid">
        <VmFacts />
        <ResourceCharts />
      </div>
      <EngineCard />
    </div>
  );
}
