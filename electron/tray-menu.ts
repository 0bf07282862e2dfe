// The tray (menu-bar) menu as data: which icon, which tooltip, which items and whether each is
// enabled, for a VM state. main.ts turns it into an Electron Menu; keeping the model here, with
// no electron import, lets the unit tests check every state.
import type { VmState } from '../core/api/types.ts';
import type { UiPage } from './ui-navigation.ts';

export type TrayIcon = VmState;

export const TRAY_ICONS: readonly TrayIcon[] = [
  'stopped',
  'starting',
  'running',
  'stopping',
  'error',
];

export type TrayActionId =
  'status' | 'start' | 'stop' | 'restart' | 'dashboard' | 'console' | 'settings' | 'reset' | 'quit';

export interface TrayActionItem {
  id: TrayActionId;
  label: string;
  enabled: boolean;
  kind: 'action';
}

export interface TraySeparator {
  id: `separator-${number}`;
  label: '';
  enabled: false;
  kind: 'separator';
}

export type TrayItem = TrayActionItem | TraySeparator;

export interface TrayMenuModel {
  tooltip: string;
  icon: TrayIcon;
  items: TrayItem[];
}

/** What the tray shows beside the state, when known. */
export interface TrayExtra {
  /** The step of a start or reset under way ("booting the kernel"), and how far it is. */
  progress?: { step: string; percent: number };
  /** Why the VM is in the error state. */
  errorMessage?: string;
  /** Settings changed since the VM booted that need a restart. */
  pendingRestart?: readonly string[];
  /** The app is quitting (stopping the VM first): nothing but the status is offered. */
  quitting?: boolean;
}

const STATUS_LINE: Record<VmState, string> = {
  stopped: 'The VM is stopped',
  starting: 'The VM is starting',
  running: 'The VM is running',
  stopping: 'The VM is stopping',
  error: 'The VM has failed',
};

/** The longest tooltip line: some desktops cut tooltips, and an error message can be long. */
const MAX_DETAIL = 120;

export function trayMenuModel(state: VmState, extra: TrayExtra = {}): TrayMenuModel {
  const pending = extra.pendingRestart ?? [];
  const busy = extra.quitting === true;
  const canStart = !busy && (state === 'stopped' || state === 'error');
  const canStop = !busy && (state === 'running' || state === 'starting');
  const canRestart = !busy && (state === 'running' || state === 'error');
  const status = statusLine(state, extra);
  let separators = 0;
  const separator = (): TraySeparator => ({
    id: `separator-${++separators}`,
    label: '',
    enabled: false,
    kind: 'separator',
  });
  const action = (id: TrayActionId, label: string, enabled: boolean): TrayActionItem => ({
    id,
    label,
    enabled,
    kind: 'action',
  });
  const restartLabel =
    state === 'running' && pending.length > 0 ? 'Restart (apply settings)' : 'Restart';
  return {
    tooltip: tooltip(status, state, extra),
    icon: state,
    items: [
      // The first line says what the VM is doing; it is not a command.
      action('status', status, false),
      separator(),
      action('start', 'Start', canStart),
      action('stop', 'Stop', canStop),
      action('restart', restartLabel, canRestart),
      separator(),
      action('dashboard', 'Dashboard', !busy),
      action('console', 'Console', !busy),
      action('settings', 'Settings', !busy),
      separator(),
      action('reset', 'Reset to factory…', !busy && state !== 'stopping'),
      separator(),
      action('quit', busy ? 'Quitting…' : 'Quit Berth', !busy),
    ],
  };
}

/** The page a tray item opens in the window, if it opens one. */
export function trayItemPage(id: TrayActionId): UiPage | null {
  switch (id) {
    case 'dashboard':
    case 'console':
    case 'settings':
    case 'reset':
      return id;
    default:
      return null;
  }
}

function statusLine(state: VmState, extra: TrayExtra): string {
  if (extra.quitting) return 'Berth is stopping the VM to quit';
  return STATUS_LINE[state];
}

function tooltip(status: string, state: VmState, extra: TrayExtra): string {
  const lines = [`Berth: ${status.charAt(0).toLowerCase()}${status.slice(1)}`];
  if (state === 'starting' && extra.progress) {
    lines.push(`${clip(extra.progress.step)} (${Math.round(extra.progress.percent)}%)`);
  }
  if (state === 'error' && extra.errorMessage) lines.push(clip(extra.errorMessage));
  if (state === 'running' && extra.pendingRestart && extra.pendingRestart.length > 0) {
    lines.push(`Restart to apply: ${extra.pendingRestart.join(', ')}`);
  }
  return lines.join('\n');
}

function clip(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL - 1)}…` : line;
}
