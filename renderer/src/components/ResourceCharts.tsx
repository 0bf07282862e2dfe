// CPU and memory over the last two minutes, and the data disk: what the guest uses of it and what
// the sparse file really takes on the host.
import type { ReactNode } from 'react';
import type { VmStats } from '../../../core/api/types.ts';
import { formatBytes, formatMiB } from '../format.ts';
import { useStats, useVm } from '../services.ts';
import { STATS_CAPACITY } from '../state/stores.ts';
import { Sparkline } from './Sparkline.tsx';

const cpuOf = (s: VmStats) => s.cpuPercent;
const memoryOf = (s: VmStats) => s.memory.usedMiB;

export function ResourceCharts() {
  const samples = useStats((s) => s.samples);
  const running = useVm((s) => s.status?.state === 'running');
  // The samples of a run that ended say nothing about now.
  const latest = running ? samples[samples.length - 1] : undefined;

  return (
    <section className="panel" aria-labelledby="resources-title">
      <h2 id="resources-title" className="panel-title">
        Resources
      </h2>
      {!latest ? (
        <p className="muted">{running ? 'Measuring…' : 'Shown while the VM is running.'}</p>
      ) : (
        <div className="metrics">
          <Metric
            title="CPU"
            value={latest.cpuPercent === null ? '–' : `${latest.cpuPercent.toFixed(0)}%`}
            detail="of the VM's CPUs"
          >
            <Sparkline
              values={samples.map(cpuOf)}
              capacity={STATS_CAPACITY}
              min={0}
              max={100}
              label="CPU use over the last two minutes"
            />
          </Metric>
          <Metric
            title="Memory"
            value={formatMiB(latest.memory.usedMiB)}
            detail={`of ${formatMiB(latest.memory.totalMiB)}`}
          >
            <Sparkline
              values={samples.map(memoryOf)}
              capacity={STATS_CAPACITY}
              min={0}
              max={latest.memory.totalMiB}
              label="Memory use over the last two minutes"
              tone="memory"
            />
          </Metric>
          <DiskMetric disk={latest.disk} />
        </div>
      )}
    </section>
  );
}

function Metric({
  title,
  value,
  detail,
  children,
}: {
  title: string;
  value: string;
  detail: string;
  children: ReactNode;
}) {
  return (
    <div className="metric">
      <div className="metric-head">
        <span className="metric-title">{title}</span>
        <span className="metric-value">{value}</span>
      </div>
      <div className="metric-detail muted">{detail}</div>
      {children}
    </div>
  );
}

function DiskMetric({ disk }: { disk: VmStats['disk'] }) {
  const share = disk.sizeBytes > 0 ? Math.min(100, (disk.usedBytes / disk.sizeBytes) * 100) : 0;
  return (
    <Metric
      title="Data disk"
      value={formatBytes(disk.usedBytes)}
      detail={`used of ${formatBytes(disk.sizeBytes)}`}
    >
      <meter className="disk-meter" min={0} max={100} value={share} aria-label="Data disk use" />
      <div className="metric-detail muted">
        {formatBytes(disk.allocatedBytes)} allocated on the host (sparse file)
      </div>
    </Metric>
  );
}
