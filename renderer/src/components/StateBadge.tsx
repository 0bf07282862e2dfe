// The VM's state as a badge whose text is exactly the state word (tests and screen readers read it).
import type { VmState } from '../../../core/api/types.ts';

export function StateBadge({ state }: { state: VmState | undefined }) {
  return (
    <span className={`state-badge state-${state ?? 'unknown'}`}>
      <StateDot state={state} />
      <span data-testid="vm-state">{state ?? 'unknown'}</span>
    </span>
  );
}

export function StateDot({ state }: { state: VmState | undefined }) {
  return <span className={`state-dot state-${state ?? 'unknown'}`} aria-hidden="true" />;
}
