// The data every Berth client sees: the VM's status, its settings, events and guest sessions.
// The CLI, Electron main and the browser bridge all speak these shapes (JSON over the control
// socket or IPC), so this file has no runtime code and imports only types.
import type { FieldError, Settings, SettingsField, StorageDriver } from '../settings/schema.ts';
import type { SettingsCommit, SettingsDiffEntry } from '../settings/commit.ts';

export type { FieldError, Settings, SettingsField, StorageDriver, SettingsCommit };
export type { SettingsDiffEntry };

export type VmState = 'stopped' | 'starting' | 'running' | 'stopping' | 'error';

/** Why the VM is in the error state, in words a user can act on. */
export interface VmErrorInfo {
  message: string;
  /** "killed by SIGKILL", "exit code 1"; null when the VMM did not exit (it could not start). */
  exitReason: string | null;
  serialTail: string;
}

export interface StopRecord {
  /** False when the guest did not power off in time (or could not be asked) and was killed. */
  graceful: boolean;
  durationMs: number;
  /** Set when the user must be told something, e.g. that the VM was killed. */
  message?: string;
}

export interface VmStatus {
  state: VmState;
  /** When the current state began, ms since the epoch. */
  since: number;
  uptimeMs?: number;
  /** The backend running the VM ("qemu", "kvm") and why it was chosen. */
  backend?: string;
  backendReason?: string;
  /** The VMM process (QEMU or ours), while one runs. */
  vmmPid?: number;
  error?: VmErrorInfo;
  lastStop?: StopRecord;
  /** Settings changed since the VM started that take effect only after a restart. */
  pendingRestart: SettingsField[];
  dataDirectory: string;
  /** The VM's container engine on the host, while run/docker.sock is served (the VM runs). */
  engine?: EngineStatus;
}

/** A container's TCP port, published on the host's 127.0.0.1 (loopback only). */
export interface PublishedPortInfo {
  /** The port on the host's 127.0.0.1: http://127.0.0.1:<port> reaches the container. */
  port: number;
  /** The container's own port behind it (TCP). */
  privatePort: number;
  containerName: string;
}

/** The container engine as the host sees it: its socket, the docker context, published ports. */
export interface EngineStatus {
  /** run/docker.sock: DOCKER_HOST=unix://<socket> reaches the VM's docker engine. */
  socket: string;
  /** The docker CLI context that points at the socket (`docker --context berth ...`). */
  context: 'berth';
  /** Sorted by port. */
  publishedPorts: PublishedPortInfo[];
}

/** What the settings may be on this host, for forms and for messages. */
export interface SettingsLimits {
  cpus: { min: number; max: number };
  memoryMiB: { min: number; max: number; step: number };
  diskGiB: { min: number; max: number };
  storageDrivers: readonly StorageDriver[];
}

export interface SettingsView {
  revision: number;
  settings: Settings;
  limits: SettingsLimits;
  pendingRestart: SettingsField[];
  /** What the store found wrong when it opened (a damaged revision it fell back from). */
  warnings: string[];
}

export interface SettingsChange {
  changed: boolean;
  revision: number;
  settings: Settings;
  diff: SettingsDiffEntry[];
  /** Fields of this change that take effect only after a restart. */
  restartNeeded: SettingsField[];
  /** True when the VM was restarted to apply the change (`apply`). */
  applied: boolean;
}

export interface ResetResult {
  /** The settings history, exported before the reset. */
  backup: string;
  settings: Settings;
  revision: number;
  /** Whether the VM was running before and so was started again. */
  restarted: boolean;
}

/** The running VM's resource use, as the guest sees it (the dashboard's charts). */
export interface VmStats {
  at: number;
  /** How busy the VM's CPUs were since the previous stats call, 0..100; null on the first. */
  cpuPercent: number | null;
  memory: { totalMiB: number; usedMiB: number };
  /** /var on the data disk: what the guest uses, and what the sparse file takes on the host. */
  disk: { sizeBytes: number; usedBytes: number; allocatedBytes: number };
}

export interface LogsResult {
  /** The last lines of logs/serial.log. */
  text: string;
  path: string;
}

export type ChangeSource = 'cli' | 'gui';

export interface PtySize {
  cols: number;
  rows: number;
}

// Events, pushed to subscribers as JSON-RPC notifications named "event.<type>".
export interface StateEvent {
  from: VmState;
  to: VmState;
  at: number;
  error?: VmErrorInfo;
  message?: string;
}

export interface ProgressEvent {
  /** The long operation this step belongs to. */
  operation: 'image' | 'start' | 'stop' | 'reset';
  step: string;
  percent: number;
}

export interface SerialEvent {
  text: string;
}

export interface SettingsEvent {
  revision: number;
  settings: Settings;
  pendingRestart: SettingsField[];
}

/**
 * The engine's part of the status changed: its socket began or stopped being served, or the
 * published ports changed. `engine` is what status() now has as `engine` (null: absent).
 */
export interface EngineEvent {
  engine: EngineStatus | null;
}

export interface ApiEvents {
  state: StateEvent;
  progress: ProgressEvent;
  serial: SerialEvent;
  settings: SettingsEvent;
  engine: EngineEvent;
}

export type ApiEventType = keyof ApiEvents;
export const API_EVENT_TYPES: readonly ApiEventType[] = [
  'state',
  'progress',
  'serial',
  'settings',
  'engine',
];

// Guest sessions: a shell (with a pty) or a command, bytes as base64 both ways.
export interface SessionOutput {
  id: number;
  stream: 'stdout' | 'stderr';
  /** base64 */
  data: string;
}

/** Host terminal output (base64) and exit, as notifications "terminal.output" / "terminal.exit". */
export interface TerminalOutput {
  id: number;
  data: string;
}

export interface TerminalExit {
  id: number;
  code: number | null;
}

export interface SessionExit {
  id: number;
  code: number | null;
  signal: string | null;
}
