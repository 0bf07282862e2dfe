// The VM's settings: what they are, their defaults, and what a change may do on this host.
// Every message says what was wrong and what is allowed, because the CLI and the settings window
// show them to the user as they are.
import type { HostLimits } from './host-limits.ts';

export type { HostLimits } from './host-limits.ts';

export const STORAGE_DRIVERS = ['overlay2', 'btrfs', 'vfs'] as const;
export type StorageDriver = (typeof STORAGE_DRIVERS)[number];

export interface Settings {
  cpus: number;
  memoryMiB: number;
  diskGiB: number;
  storageDriver: StorageDriver;
}

export type SettingsField = keyof Settings;

/** In this order everywhere: diffs, messages, the canonical JSON that is checksummed. */
export const SETTINGS_FIELDS: readonly SettingsField[] = [
  'cpus',
  'memoryMiB',
  'diskGiB',
  'storageDriver',
];

/** The CLI's `key=value` names for each field (the field names themselves are accepted too). */
export const FIELD_ALIASES: Readonly<Record<SettingsField, string>> = {
  cpus: 'cpus',
  memoryMiB: 'memory',
  diskGiB: 'disk',
  storageDriver: 'storage-driver',
};

/** Changing any of these needs the VM restarted (a grown disk is seen by the guest at boot). */
const NEEDS_RESTART: ReadonlySet<SettingsField> = new Set(SETTINGS_FIELDS);

export const MIN_MEMORY_MiB = 512;
export const MEMORY_STEP_MiB = 256;
/** Left to the host when the VM takes the most it may. */
export const HOST_RESERVE_MiB = 1024;
export const DEFAULT_MEMORY_MiB = 2048;
export const DEFAULT_DISK_GiB = 64;
export const MIN_DISK_GiB = 1;

export interface FieldError {
  field: string;
  message: string;
}

export type ValidationResult = { ok: true; value: Settings } | { ok: false; errors: FieldError[] };

/** The most memory the VM may have here: host memory less 1 GiB, rounded down to a step. */
export function maxMemoryMiB(host: HostLimits): number {
  const free = host.memoryMiB - HOST_RESERVE_MiB;
  return Math.floor(free / MEMORY_STEP_MiB) * MEMORY_STEP_MiB;
}

export function defaultSettings(host: HostLimits): Settings {
  return {
    cpus: Math.max(1, Math.min(2, host.cores)),
    memoryMiB: Math.max(MIN_MEMORY_MiB, Math.min(DEFAULT_MEMORY_MiB, maxMemoryMiB(host))),
    diskGiB: DEFAULT_DISK_GiB,
    storageDriver: 'overlay2',
  };
}

/**
 * Checks a change against the current settings and this host. A field whose value is not
 * changing is not re-checked against the host: the host may have shrunk since it was set (that
 * is reported separately, see hostLimitProblems), and refusing every unrelated edit until the
 * user fixes it would strand them.
 */
export function validateSettingsChange(
  current: Settings,
  patch: unknown,
  host: HostLimits,
): ValidationResult {
  if (!isPlainObject(patch)) {
    return {
      ok: false,
      errors: [
        {
          field: 'settings',
          message: `a settings change must be an object of fields (got ${describe(patch)})`,
        },
      ],
    };
  }
  const errors: FieldError[] = [];
  const value: Settings = { ...current };
  for (const [key, given] of Object.entries(patch)) {
    if (given === undefined) continue;
    if (!isField(key)) {
      errors.push({
        field: key,
        message: `unknown setting ${JSON.stringify(key)}; the settings are ${SETTINGS_FIELDS.join(', ')}`,
      });
      continue;
    }
    const error =
      checkKind(key, given) ??
      (given === current[key] ? null : checkOnHost(key, given, current, host));
    if (error) errors.push({ field: key, message: error });
    else (value as unknown as Record<string, unknown>)[key] = given;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

/**
 * Checks a whole settings object as stored in a revision: every field present, nothing else,
 * right types and host-independent bounds. Host limits are deliberately not checked here.
 */
export function checkStoredSettings(value: unknown): FieldError[] {
  if (!isPlainObject(value)) {
    return [{ field: 'settings', message: `settings must be an object (got ${describe(value)})` }];
  }
  const errors: FieldError[] = [];
  for (const key of Object.keys(value)) {
    if (!isField(key))
      errors.push({ field: key, message: `unknown setting ${JSON.stringify(key)}` });
  }
  for (const field of SETTINGS_FIELDS) {
    if (!(field in value)) {
      errors.push({ field, message: `${label(field)} is missing` });
      continue;
    }
    const error = checkKind(field, value[field]) ?? checkAnyHost(field, value[field]);
    if (error) errors.push({ field, message: error });
  }
  return errors;
}

/** Settings this host cannot honour (e.g. moved to a smaller machine); empty when all fit. */
export function hostLimitProblems(settings: Settings, host: HostLimits): FieldError[] {
  const problems: FieldError[] = [];
  if (settings.cpus > host.cores) {
    problems.push({
      field: 'cpus',
      message: `cpus is ${settings.cpus} but this host has ${host.cores} cores`,
    });
  }
  if (settings.memoryMiB > maxMemoryMiB(host)) {
    problems.push({
      field: 'memoryMiB',
      message: `memory is ${settings.memoryMiB} MiB but this host allows at most ${Math.max(maxMemoryMiB(host), 0)} MiB`,
    });
  }
  return problems;
}

/** The fields whose change from `before` to `after` needs the VM restarted. */
export function restartNeeded(before: Settings, after: Settings): SettingsField[] {
  return SETTINGS_FIELDS.filter(
    (field) => before[field] !== after[field] && NEEDS_RESTART.has(field),
  );
}

export type AssignmentResult =
  { ok: true; field: SettingsField; patch: Partial<Settings> } | { ok: false; error: FieldError };

/**
 * The CLI's `key=value` form: `cpus=4`, `memory=4096` (MiB), `disk=128` (GiB),
 * `storage-driver=btrfs`. Only the syntax and the key are checked here; bounds are checked by
 * validateSettingsChange, which knows the host and the current settings.
 */
export function parseAssignment(text: string): AssignmentResult {
  const equals = text.indexOf('=');
  if (equals < 0) {
    return fail(text, `expected key=value, e.g. memory=4096 (got ${JSON.stringify(text)})`);
  }
  const key = text.slice(0, equals).trim();
  const raw = text.slice(equals + 1).trim();
  const field = fieldForKey(key);
  if (!field) {
    return fail(
      key,
      `unknown setting ${JSON.stringify(key)}; use one of ${SETTINGS_FIELDS.map((f) => FIELD_ALIASES[f]).join(', ')}`,
    );
  }
  const alias = FIELD_ALIASES[field];
  if (raw === '') return fail(field, `${alias} needs a value, e.g. ${alias}=${EXAMPLES[field]}`);
  if (field === 'storageDriver') {
    return { ok: true, field, patch: { storageDriver: raw as StorageDriver } };
  }
  if (!/^\d+$/.test(raw)) {
    return fail(
      field,
      `${alias} must be a whole number${UNIT_NAMES[field]} (got ${JSON.stringify(raw)})`,
    );
  }
  return { ok: true, field, patch: { [field]: Number(raw) } };
}

/** Several assignments into one patch; a key given twice is an error rather than a guess. */
export function parseAssignments(
  texts: readonly string[],
): { ok: true; patch: Partial<Settings> } | { ok: false; errors: FieldError[] } {
  const patch: Partial<Settings> = {};
  const errors: FieldError[] = [];
  for (const text of texts) {
    const result = parseAssignment(text);
    if (!result.ok) {
      errors.push(result.error);
    } else if (result.field in patch) {
      errors.push({
        field: result.field,
        message: `${FIELD_ALIASES[result.field]} is given more than once`,
      });
    } else {
      Object.assign(patch, result.patch);
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, patch };
}

const EXAMPLES: Record<SettingsField, string> = {
  cpus: '4',
  memoryMiB: '4096',
  diskGiB: '128',
  storageDriver: 'overlay2',
};

const UNIT_NAMES: Record<SettingsField, string> = {
  cpus: '',
  memoryMiB: ' of MiB',
  diskGiB: ' of GiB',
  storageDriver: '',
};

function fieldForKey(key: string): SettingsField | null {
  for (const field of SETTINGS_FIELDS) {
    if (key === FIELD_ALIASES[field] || key === field) return field;
  }
  return null;
}

function fail(field: string, message: string): AssignmentResult {
  return { ok: false, error: { field, message } };
}

function label(field: SettingsField): string {
  return field === 'storageDriver'
    ? 'storage driver'
    : field === 'diskGiB'
      ? 'disk size'
      : FIELD_ALIASES[field];
}

/** The value's type only; null when fine. */
function checkKind(field: SettingsField, value: unknown): string | null {
  if (field === 'storageDriver') {
    return typeof value === 'string' && (STORAGE_DRIVERS as readonly string[]).includes(value)
      ? null
      : `storage driver must be one of ${STORAGE_DRIVERS.join(', ')} (got ${describe(value)})`;
  }
  return typeof value === 'number' && Number.isSafeInteger(value)
    ? null
    : `${label(field)} must be a whole number${UNIT_NAMES[field]} (got ${describe(value)})`;
}

/** Bounds that hold on any host (for stored revisions); `value` has the right type. */
function checkAnyHost(field: SettingsField, value: unknown): string | null {
  const n = value as number;
  if (field === 'cpus' && n < 1) return `cpus must be at least 1 (got ${n})`;
  if (field === 'memoryMiB' && (n < MIN_MEMORY_MiB || n % MEMORY_STEP_MiB !== 0)) {
    return `memory must be at least ${MIN_MEMORY_MiB} MiB in steps of ${MEMORY_STEP_MiB} (got ${n})`;
  }
  if (field === 'diskGiB' && n < MIN_DISK_GiB) {
    return `disk size must be at least ${MIN_DISK_GiB} GiB (got ${n})`;
  }
  return null;
}

/** Bounds that depend on this host and on the current value; `value` has the right type. */
function checkOnHost(
  field: SettingsField,
  value: unknown,
  current: Settings,
  host: HostLimits,
): string | null {
  if (field === 'cpus') {
    const cpus = value as number;
    return cpus >= 1 && cpus <= host.cores
      ? null
      : `cpus must be between 1 and ${host.cores}, the cores this host has (got ${cpus})`;
  }
  if (field === 'memoryMiB') {
    const memory = value as number;
    const max = maxMemoryMiB(host);
    if (max < MIN_MEMORY_MiB) {
      return `memory cannot be changed: this host has ${host.memoryMiB} MiB and needs ${MIN_MEMORY_MiB + HOST_RESERVE_MiB} MiB to give the VM ${MIN_MEMORY_MiB} MiB (got ${memory})`;
    }
    return memory >= MIN_MEMORY_MiB && memory <= max && memory % MEMORY_STEP_MiB === 0
      ? null
      : `memory must be between ${MIN_MEMORY_MiB} and ${max} MiB in steps of ${MEMORY_STEP_MiB} (got ${memory})`;
  }
  if (field === 'diskGiB') {
    const disk = value as number;
    if (disk < current.diskGiB) {
      return `disk size can only grow: it is ${current.diskGiB} GiB now (got ${disk})`;
    }
    const max = current.diskGiB + Math.max(0, host.freeDiskGiB);
    return disk <= max
      ? null
      : `disk size can grow only within the ${host.freeDiskGiB} GiB free on the host: it can be ${current.diskGiB} to ${max} GiB (got ${disk})`;
  }
  return null;
}

function isField(key: string): key is SettingsField {
  return (SETTINGS_FIELDS as readonly string[]).includes(key);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}
