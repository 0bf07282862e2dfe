// One revision of the settings: the record stored as revisions/<n>.json, how it is written, and
// how a file read back is judged intact or damaged (and why, in words for the warning).
import { createHash } from 'node:crypto';
import { FIELD_ALIASES, SETTINGS_FIELDS, checkStoredSettings } from './schema.ts';
import type { Settings, SettingsField } from './schema.ts';

/** Who asked for a change. */
export type ChangeSource = 'cli' | 'gui';
/** What made a commit: a user's change, a rollback, a reset to factory, or a new store. */
export type CommitSource = ChangeSource | 'rollback' | 'reset' | 'init';

export const CHANGE_SOURCES: readonly ChangeSource[] = ['cli', 'gui'];
const COMMIT_SOURCES: readonly CommitSource[] = ['cli', 'gui', 'rollback', 'reset', 'init'];

export interface SettingsDiffEntry {
  field: SettingsField;
  from: Settings[SettingsField];
  to: Settings[SettingsField];
}

export interface SettingsCommit {
  revision: number;
  /** ISO 8601, UTC. */
  time: string;
  source: CommitSource;
  /** For rollback and reset commits: who asked (cli or gui), when known. */
  requestedBy?: ChangeSource;
  /** For rollback commits: the revision whose settings this commit restores. */
  restoredRevision?: number;
  message: string;
  settings: Settings;
  /** From the previous current revision to this one; empty for the first revision. */
  diff: SettingsDiffEntry[];
  /** sha256 (hex) of canonicalSettingsJson(settings). */
  sha256: string;
}

const REVISION_FILE = /^(0|[1-9]\d*)\.json$/;

export function revisionFileName(revision: number): string {
  return `${revision}.json`;
}

/** The revision a file name holds, or null for anything else (temp files, strays). */
export function revisionOfFileName(name: string): number | null {
  const match = REVISION_FILE.exec(name);
  return match ? Number(match[1]) : null;
}

/** The settings as checksummed: fields in schema order, no whitespace. */
export function canonicalSettingsJson(settings: Settings): string {
  return JSON.stringify(Object.fromEntries(SETTINGS_FIELDS.map((f) => [f, settings[f]])));
}

export function settingsSha256(settings: Settings): string {
  return createHash('sha256').update(canonicalSettingsJson(settings)).digest('hex');
}

export function diffSettings(before: Settings, after: Settings): SettingsDiffEntry[] {
  return SETTINGS_FIELDS.filter((field) => before[field] !== after[field]).map((field) => ({
    field,
    from: before[field],
    to: after[field],
  }));
}

/** "memory 2048 -> 4096, cpus 2 -> 4": the default commit message for a change. */
export function describeDiff(diff: readonly SettingsDiffEntry[]): string {
  if (diff.length === 0) return 'no change';
  return diff.map((d) => `${FIELD_ALIASES[d.field]} ${d.from} -> ${d.to}`).join(', ');
}

export function serializeCommit(commit: SettingsCommit): string {
  const ordered: Record<string, unknown> = {
    revision: commit.revision,
    time: commit.time,
    source: commit.source,
    requestedBy: commit.requestedBy,
    restoredRevision: commit.restoredRevision,
    message: commit.message,
    settings: JSON.parse(canonicalSettingsJson(commit.settings)),
    diff: commit.diff,
    sha256: commit.sha256,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

export type ParsedCommit = { ok: true; commit: SettingsCommit } | { ok: false; reason: string };

/** Judges a revision file's text: intact (checksum, shape and settings all good) or why not. */
export function parseCommitFile(text: string, expectedRevision: number): ParsedCommit {
  if (text.trim() === '') return { ok: false, reason: 'empty file' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The engine's messages vary; a record we wrote is one object, so an opened but unclosed
    // object is a file cut short (a torn write or a full disk), anything else is garbage.
    const trimmed = text.trim();
    const truncated = trimmed.startsWith('{') && !trimmed.endsWith('}');
    return { ok: false, reason: truncated ? 'truncated JSON' : 'bad JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not a revision record' };
  }
  const record = value as Record<string, unknown>;
  if (record.revision !== expectedRevision) {
    return { ok: false, reason: `it says revision ${JSON.stringify(record.revision)}` };
  }
  const settings = record.settings;
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    return { ok: false, reason: 'no settings' };
  }
  if (
    typeof record.sha256 !== 'string' ||
    settingsSha256(settings as Settings) !== record.sha256.toLowerCase()
  ) {
    return { ok: false, reason: 'bad checksum' };
  }
  const invalid = checkStoredSettings(settings);
  if (invalid.length > 0) {
    return { ok: false, reason: `invalid settings: ${invalid.map((e) => e.message).join('; ')}` };
  }
  if (typeof record.time !== 'string' || Number.isNaN(Date.parse(record.time))) {
    return { ok: false, reason: 'bad time' };
  }
  if (!COMMIT_SOURCES.includes(record.source as CommitSource)) {
    return { ok: false, reason: 'bad source' };
  }
  if (typeof record.message !== 'string') return { ok: false, reason: 'bad message' };
  if (!Array.isArray(record.diff) || !record.diff.every(isDiffEntry)) {
    return { ok: false, reason: 'bad diff' };
  }
  if (
    record.requestedBy !== undefined &&
    !CHANGE_SOURCES.includes(record.requestedBy as ChangeSource)
  ) {
    return { ok: false, reason: 'bad requestedBy' };
  }
  if (record.restoredRevision !== undefined && !Number.isSafeInteger(record.restoredRevision)) {
    return { ok: false, reason: 'bad restoredRevision' };
  }
  const commit: SettingsCommit = {
    revision: expectedRevision,
    time: record.time,
    source: record.source as CommitSource,
    message: record.message,
    settings: JSON.parse(canonicalSettingsJson(settings as Settings)) as Settings,
    diff: record.diff as SettingsDiffEntry[],
    sha256: record.sha256.toLowerCase(),
  };
  if (record.requestedBy !== undefined) commit.requestedBy = record.requestedBy as ChangeSource;
  if (record.restoredRevision !== undefined) {
    commit.restoredRevision = record.restoredRevision as number;
  }
  return { ok: true, commit };
}

function isDiffEntry(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    (SETTINGS_FIELDS as readonly unknown[]).includes(entry.field) &&
    'from' in entry &&
    'to' in entry
  );
}
