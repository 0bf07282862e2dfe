// The API's methods: each one's parameters and result, and the run-time check of its parameters.
// Parameters arrive as JSON from any client, so each is checked field by field; a bad request is
// refused with every wrong field named, before anything is done.
import { ApiError } from './errors.ts';
import type {
  ApiEventType,
  ChangeSource,
  FieldError,
  LogsResult,
  PtySize,
  ResetResult,
  SettingsChange,
  SettingsCommit,
  SettingsView,
  VmStats,
  VmStatus,
} from './types.ts';
import { API_EVENT_TYPES } from './types.ts';

export interface StopParams {
  /** How long the guest gets to power off before the VMM is killed (ms, default 15000). */
  deadlineMs?: number;
}

export interface SettingsSetParams {
  /** Fields to change, e.g. { cpus: 2 }; checked by the settings schema. */
  changes: Record<string, unknown>;
  source?: ChangeSource;
  message?: string;
  /** Restart the VM (if it runs) so the change takes effect now. */
  apply?: boolean;
}

export interface SettingsRollbackParams {
  revision: number;
  source?: ChangeSource;
  message?: string;
  apply?: boolean;
}

export interface SessionOpenParams {
  /** A command to run; without one, an interactive login shell. */
  command?: string;
  /** A pseudo-terminal of this size (a shell always gets one; 80x24 when not given). */
  pty?: PtySize & { term?: string };
}

export interface ApiMethods {
  status: { params: Record<string, never>; result: VmStatus };
  start: { params: Record<string, never>; result: VmStatus };
  stop: { params: StopParams; result: VmStatus };
  restart: { params: StopParams; result: VmStatus };
  /** Reset to factory: `confirm` must be true, because the data disk is deleted. */
  reset: { params: { confirm: true; source?: ChangeSource }; result: ResetResult };
  'settings.get': { params: Record<string, never>; result: SettingsView };
  'settings.set': { params: SettingsSetParams; result: SettingsChange };
  'settings.history': { params: { limit?: number }; result: SettingsCommit[] };
  'settings.rollback': { params: SettingsRollbackParams; result: SettingsChange };
  logs: { params: { lines?: number }; result: LogsResult };
  /** The running VM's CPU, memory and disk use (wrongState when it is not running). */
  stats: { params: Record<string, never>; result: VmStats };
  /** Events this connection receives as notifications "event.<type>" (all when not given). */
  subscribe: { params: { events?: ApiEventType[] }; result: { events: ApiEventType[] } };
  'session.open': { params: SessionOpenParams; result: { id: number } };
  /** `data` is base64. */
  'session.write': { params: { id: number; data: string }; result: Record<string, never> };
  'session.eof': { params: { id: number }; result: Record<string, never> };
  'session.resize': { params: { id: number } & PtySize; result: Record<string, never> };
  'session.close': { params: { id: number }; result: Record<string, never> };
  // The host terminal (a shell on this machine, through node-pty): served by the desktop app and
  // the dashboard only, never by the bare control socket, since it is not about the VM.
  'terminal.open': { params: PtySize; result: { id: number } };
  'terminal.write': { params: { id: number; data: string }; result: Record<string, never> };
  'terminal.resize': { params: { id: number } & PtySize; result: Record<string, never> };
  'terminal.close': { params: { id: number }; result: Record<string, never> };
  /** Starts (once) the dashboard in browser mode; the URL carries its access token. */
  'dashboard.open': { params: Record<string, never>; result: { url: string } };
}

export type ApiMethod = keyof ApiMethods;
export type ParamsOf<M extends ApiMethod> = ApiMethods[M]['params'];
export type ResultOf<M extends ApiMethod> = ApiMethods[M]['result'];

type Check = (value: unknown, field: string) => string | null;

const optional =
  (check: Check): Check =>
  (value, field) =>
    value === undefined ? null : check(value, field);

const integer =
  (min: number, max: number): Check =>
  (value) =>
    Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max
      ? null
      : `must be a whole number from ${min} to ${max} (got ${describe(value)})`;

const boolean: Check = (value) =>
  typeof value === 'boolean' ? null : `must be true or false (got ${describe(value)})`;

const text =
  (maxLength: number): Check =>
  (value) =>
    typeof value === 'string' && value.length <= maxLength && !value.includes('\0')
      ? null
      : `must be a string of at most ${maxLength} characters without NUL (got ${describe(value)})`;

const oneOf =
  (choices: readonly string[]): Check =>
  (value) =>
    typeof value === 'string' && choices.includes(value)
      ? null
      : `must be one of ${choices.join(', ')} (got ${describe(value)})`;

const object: Check = (value) =>
  isPlainObject(value) ? null : `must be an object (got ${describe(value)})`;

const base64 =
  (maxBytes: number): Check =>
  (value) =>
    typeof value === 'string' &&
    value.length % 4 === 0 &&
    /^[A-Za-z0-9+/]*={0,2}$/.test(value) &&
    (value.length / 4) * 3 - (value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0) <= maxBytes
      ? null
      : `must be base64 of at most ${maxBytes} bytes`;

const eventList: Check = (value) =>
  Array.isArray(value) && value.every((v) => (API_EVENT_TYPES as string[]).includes(v))
    ? null
    : `must be a list of ${API_EVENT_TYPES.join(', ')} (got ${describe(value)})`;

const exactlyTrue: Check = (value) =>
  value === true
    ? null
    : 'must be true: reset deletes the data disk and the current settings (the settings history is kept as a backup)';

const ptySize = (value: unknown, field: string): string | null => {
  const shape = object(value, field);
  if (shape) return shape;
  const problems = checkFields(value as Record<string, unknown>, PTY_FIELDS, field);
  return problems.length > 0 ? problems.map((p) => `${p.field} ${p.message}`).join('; ') : null;
};

const SOURCE = optional(oneOf(['cli', 'gui']));
const MESSAGE = optional(text(500));
const SESSION_ID = integer(1, Number.MAX_SAFE_INTEGER);
const DIMENSION = integer(1, 1000);
const PTY_FIELDS: Record<string, Check> = {
  cols: DIMENSION,
  rows: DIMENSION,
  term: optional(text(64)),
};
/** One write's data: generous for a paste, small enough that one client cannot hog memory. */
export const MAX_SESSION_WRITE_BYTES = 1024 * 1024;

const PARAMS: { [M in ApiMethod]: Record<string, Check> } = {
  status: {},
  start: {},
  stop: { deadlineMs: optional(integer(0, 600_000)) },
  restart: { deadlineMs: optional(integer(0, 600_000)) },
  reset: { confirm: exactlyTrue, source: SOURCE },
  'settings.get': {},
  'settings.set': { changes: object, source: SOURCE, message: MESSAGE, apply: optional(boolean) },
  'settings.history': { limit: optional(integer(1, 100_000)) },
  'settings.rollback': {
    revision: integer(0, Number.MAX_SAFE_INTEGER),
    source: SOURCE,
    message: MESSAGE,
    apply: optional(boolean),
  },
  logs: { lines: optional(integer(1, 100_000)) },
  stats: {},
  subscribe: { events: optional(eventList) },
  'session.open': { command: optional(text(64 * 1024)), pty: optional(ptySize) },
  'session.write': { id: SESSION_ID, data: base64(MAX_SESSION_WRITE_BYTES) },
  'session.eof': { id: SESSION_ID },
  'session.resize': { id: SESSION_ID, cols: DIMENSION, rows: DIMENSION },
  'session.close': { id: SESSION_ID },
  'terminal.open': { cols: DIMENSION, rows: DIMENSION },
  'terminal.write': { id: SESSION_ID, data: base64(MAX_SESSION_WRITE_BYTES) },
  'terminal.resize': { id: SESSION_ID, cols: DIMENSION, rows: DIMENSION },
  'terminal.close': { id: SESSION_ID },
  'dashboard.open': {},
};

export const API_METHODS = Object.keys(PARAMS) as ApiMethod[];

export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && Object.hasOwn(PARAMS, name);
}

/**
 * Checks a request's params (absent params mean {}): every required field present and right,
 * nothing unknown. Throws ApiError(invalidParams) naming every wrong field.
 */
export function checkParams<M extends ApiMethod>(method: M, params: unknown): ParamsOf<M> {
  const given = params === undefined ? {} : params;
  if (!isPlainObject(given)) {
    throw ApiError.invalidParams(
      [{ field: 'params', message: `must be an object (got ${describe(given)})` }],
      `${method}`,
    );
  }
  const errors = checkFields(given, PARAMS[method]);
  if (errors.length > 0) throw ApiError.invalidParams(errors, method);
  return given as ParamsOf<M>;
}

function checkFields(
  given: Record<string, unknown>,
  checks: Record<string, Check>,
  prefix = '',
): FieldError[] {
  const errors: FieldError[] = [];
  const name = (key: string) => (prefix ? `${prefix}.${key}` : key);
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(checks, key)) {
      const known = Object.keys(checks);
      errors.push({
        field: name(key),
        message: `is not a parameter here${known.length > 0 ? `; expected ${known.join(', ')}` : ''}`,
      });
    }
  }
  for (const [key, check] of Object.entries(checks)) {
    const problem = check(given[key], name(key));
    if (problem === null) continue;
    errors.push({
      field: name(key),
      message:
        given[key] === undefined && !problem.startsWith('must be true') ? 'is required' : problem,
    });
  }
  return errors;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
