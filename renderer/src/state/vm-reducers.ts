// How the VM's status follows what the supervisor reports. A state event is applied at once (the
// dashboard must show a change within 200 ms), and the full status fetched after it fills in the
// rest; an answer computed before an event already applied must not undo it.
import type {
  EngineEvent,
  ProgressEvent,
  SettingsEvent,
  SettingsView,
  StateEvent,
  VmState,
  VmStatus,
} from '../../../core/api/types.ts';

export type ProgressOperation = ProgressEvent['operation'];
export type ProgressMap = Partial<Record<ProgressOperation, ProgressEvent>>;

export function applyStatus(current: VmStatus | null, next: VmStatus): VmStatus {
  // `since` is when the current state began: an older one is an answer from before an event.
  if (current && next.since < current.since) return current;
  return next;
}

export function applyStateEvent(current: VmStatus | null, event: StateEvent): VmStatus {
  const base: VmStatus = current ?? {
    state: event.from,
    since: 0,
    pendingRestart: [],
    dataDirectory: '',
  };
  const next: VmStatus = { ...base, state: event.to, since: event.at };
  if (event.to === 'error') {
    if (event.error) next.error = event.error;
  } else {
    delete next.error;
  }
  if (event.to !== 'running') {
    delete next.uptimeMs;
    delete next.engine; // served only while the VM runs; its own event may come a little later
  }
  if (event.to === 'stopped' || event.to === 'error') delete next.vmmPid;
  return next;
}

/**
 * The engine's socket and published ports, as the supervisor reports them. Events arrive in the
 * order the supervisor made them, after any status answer computed before them, so the latest
 * one is the truth; before the first status there is nothing to attach it to.
 */
export function applyEngineEvent(current: VmStatus | null, event: EngineEvent): VmStatus | null {
  if (!current) return null;
  const next: VmStatus = { ...current };
  if (event.engine) next.engine = event.engine;
  else delete next.engine;
  return next;
}

export function applyProgress(progress: ProgressMap, event: ProgressEvent): ProgressMap {
  return { ...progress, [event.operation]: event };
}

/** A start's or stop's progress ends with the state it leads to; a reset ends with its call. */
export function settleProgress(progress: ProgressMap, to: VmState): ProgressMap {
  const next = { ...progress };
  if (to === 'running' || to === 'stopped' || to === 'error') {
    delete next.start;
    delete next.image; // an image build is part of a start
  }
  if (to === 'stopped' || to === 'error') delete next.stop;
  return next;
}

export function applySettingsEvent(
  view: SettingsView | null,
  event: SettingsEvent,
): SettingsView | null {
  if (!view) return null; // the limits are unknown until settings.get answers
  if (event.revision < view.revision) return view;
  return {
    ...view,
    revision: event.revision,
    settings: event.settings,
    pendingRestart: event.pendingRestart,
  };
}
