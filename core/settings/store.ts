// The versioned settings store (DataKit-style): every change is a commit, revisions/<n>.json, and
// HEAD names the current one. History is never rewritten: a rollback or a reset is a new commit.
// Writes are atomic (temp file, fsync, rename, fsync the directory), so a reader or a restart
// never sees half a file; damage is survived by falling back to the newest intact revision.
//
// One writer at a time: the supervisor holds the data directory's lock. Other processes may open
// the store to read; they see the state as of open() (or reload()).
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CHANGE_SOURCES,
  describeDiff,
  diffSettings,
  revisionFileName,
  revisionOfFileName,
  serializeCommit,
  settingsSha256,
} from './commit.ts';
import type { ChangeSource, CommitSource, SettingsCommit, SettingsDiffEntry } from './commit.ts';
import { SettingsStoreError, SettingsValidationError } from './errors.ts';
import type { HostLimits } from './host-limits.ts';
import { HEAD_FILE, REVISIONS_DIR, scanSettingsDir } from './load.ts';
import type { SettingsScan } from './load.ts';
import {
  defaultSettings,
  hostLimitProblems,
  restartNeeded,
  validateSettingsChange,
} from './schema.ts';
import type { Settings, SettingsField } from './schema.ts';
import { fsyncDirectory, removeTempFiles, writeFileAtomic } from './atomic-file.ts';

export type { ChangeSource, CommitSource, SettingsCommit, SettingsDiffEntry } from './commit.ts';
export { SettingsStoreError, SettingsValidationError } from './errors.ts';

/** Where damaged files are moved (never deleted), one folder per occasion. */
export const DAMAGED_DIR = 'damaged';
export const BACKUP_FORMAT = 'berth-settings-backup';

export interface SettingsStoreOptions {
  /** The clock commits are stamped with (tests pin it). */
  now?: () => Date;
  /** Fault injection for tests: runs after a temp file is durable, before its rename. */
  beforeRename?: (tempPath: string, path: string) => void;
}

export interface ChangeMeta {
  source: ChangeSource;
  /** Defaults to a description of the change, e.g. "memory 2048 -> 4096". */
  message?: string;
}

export interface SettingsChangeResult {
  /** Whether a commit was written: false when the change asked for what is already current. */
  changed: boolean;
  revision: number;
  settings: Settings;
  diff: SettingsDiffEntry[];
  /** Fields whose change takes effect only after the VM restarts. */
  restartNeeded: SettingsField[];
}

export interface SettingsBackup {
  format: typeof BACKUP_FORMAT;
  version: 1;
  exportedAt: string;
  head: number;
  /** Every intact revision, oldest first. */
  revisions: SettingsCommit[];
  /** The store's warnings when the backup was taken (damaged revisions are not in `revisions`). */
  warnings: string[];
}

export class SettingsStore {
  readonly dir: string;
  private readonly hostLimits: () => HostLimits;
  private readonly options: SettingsStoreOptions;
  private scan!: SettingsScan;
  private head!: SettingsCommit;
  private commits: SettingsCommit[] = [];
  private warningList: string[] = [];
  /** A write failed part way: re-read the directory before the next one. */
  private stale = false;

  private constructor(
    dir: string,
    host: HostLimits | (() => HostLimits),
    options: SettingsStoreOptions,
  ) {
    this.dir = dir;
    this.hostLimits = typeof host === 'function' ? host : () => host;
    this.options = options;
  }

  /**
   * Opens (creating if needed) the store in `dir`, the data directory's settings/. A new store
   * gets revision 0 with this host's defaults; one with nothing intact starts over the same way,
   * with its files moved aside. `host` may be a function so free space is read at each change.
   */
  static open(
    dir: string,
    host: HostLimits | (() => HostLimits),
    options: SettingsStoreOptions = {},
  ): SettingsStore {
    const store = new SettingsStore(dir, host, options);
    store.load();
    return store;
  }

  /** What open() found wrong and what was done about it; empty for a healthy store. */
  get warnings(): readonly string[] {
    return [...this.warningList];
  }

  current(): { revision: number; settings: Settings } {
    return { revision: this.head.revision, settings: { ...this.head.settings } };
  }

  /** Every intact revision up to the current one, newest first. */
  history(): SettingsCommit[] {
    return this.commits.map((c) => structuredClone(c)).reverse();
  }

  /** Re-reads the directory (for a reader that wants another process's newer commits). */
  reload(): void {
    this.load();
  }

  /**
   * Validates and commits a change. `patch` is a Partial<Settings>, checked at run time since it
   * may come straight from JSON. Throws SettingsValidationError, having written nothing.
   */
  set(patch: unknown, meta: ChangeMeta): SettingsChangeResult {
    checkMeta(meta);
    this.refreshIfStale();
    const before = this.head.settings;
    const result = validateSettingsChange(before, patch, this.hostLimits());
    if (!result.ok) throw new SettingsValidationError(result.errors);
    return this.commitIfChanged(result.value, { source: meta.source, message: meta.message });
  }

  /**
   * A new commit whose settings equal `revision`'s; history is kept as it was. Checked against
   * this host as any change is, and refused if it would shrink the disk.
   */
  rollback(revision: number, meta: ChangeMeta): SettingsChangeResult {
    checkMeta(meta);
    this.refreshIfStale();
    const target = this.commits.find((c) => c.revision === revision);
    if (!target) throw new SettingsStoreError(this.noSuchRevision(revision));
    const before = this.head.settings;
    const context = `cannot roll back to revision ${revision}`;
    if (target.settings.diskGiB < before.diskGiB) {
      throw new SettingsValidationError(
        [
          {
            field: 'diskGiB',
            message:
              `disk size can only grow, even on rollback: it is ${before.diskGiB} GiB now and ` +
              `revision ${revision} had ${target.settings.diskGiB} GiB (change the other settings ` +
              `instead, or reset to factory for a smaller disk)`,
          },
        ],
        context,
      );
    }
    const result = validateSettingsChange(before, target.settings, this.hostLimits());
    if (!result.ok) throw new SettingsValidationError(result.errors, context);
    return this.commitIfChanged(result.value, {
      source: 'rollback',
      requestedBy: meta.source,
      restoredRevision: revision,
      message: meta.message ?? `roll back to revision ${revision}`,
    });
  }

  /**
   * A new commit with this host's defaults, history kept (so even a reset can be rolled back).
   * Only for reset to factory, after the backup and with the data disk deleted: that is why the
   * disk may go back to its default size here and nowhere else. Always commits, even when the
   * settings already are the defaults, so history shows the reset.
   */
  resetToDefaults(
    meta: { source?: 'reset'; requestedBy?: ChangeSource; message?: string } = {},
  ): SettingsChangeResult {
    if (meta.requestedBy !== undefined) checkMeta({ source: meta.requestedBy });
    this.refreshIfStale();
    const before = this.head.settings;
    const after = defaultSettings(this.hostLimits());
    const commit = this.commit(after, {
      source: 'reset',
      requestedBy: meta.requestedBy,
      message: meta.message ?? 'reset to factory defaults',
    });
    return {
      changed: true,
      revision: commit.revision,
      settings: { ...after },
      diff: commit.diff,
      restartNeeded: restartNeeded(before, after),
    };
  }

  /** Writes every intact revision (and the current warnings) to one JSON file, atomically. */
  exportBackup(path: string): { path: string; revisions: number } {
    const backup: SettingsBackup = {
      format: BACKUP_FORMAT,
      version: 1,
      exportedAt: this.now().toISOString(),
      head: this.head.revision,
      revisions: this.commits,
      warnings: [...this.warningList],
    };
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, `${JSON.stringify(backup, null, 2)}\n`, this.writeOptions());
    return { path, revisions: this.commits.length };
  }

  private load(): void {
    mkdirSync(join(this.dir, REVISIONS_DIR), { recursive: true, mode: 0o700 });
    for (const dir of [this.dir, join(this.dir, REVISIONS_DIR)]) chmodPrivate(dir);
    this.scan = scanSettingsDir(this.dir);
    this.warningList = [...this.scan.warnings];
    this.stale = false;
    const host = this.hostLimits();
    if (this.scan.empty) {
      this.commit(defaultSettings(host), { source: 'init', message: 'factory defaults' });
    } else if (!this.scan.head) {
      const aside = this.moveAside([
        HEAD_FILE,
        ...this.revisionsOnDisk().map((n) => join(REVISIONS_DIR, revisionFileName(n))),
      ]);
      this.scan = scanSettingsDir(this.dir);
      this.commit(defaultSettings(host), {
        source: 'init',
        message: 'started over from defaults: no revision was intact',
      });
      this.warningList.push(
        `settings: no revision is intact; started over from defaults (the damaged files are in ${aside})`,
      );
    } else {
      this.head = this.scan.head;
      this.commits = this.scan.commits;
    }
    for (const problem of hostLimitProblems(this.head.settings, host)) {
      this.warningList.push(`settings: ${problem.message}; change it before starting the VM`);
    }
  }

  private refreshIfStale(): void {
    if (this.stale) this.load();
  }

  private commitIfChanged(
    after: Settings,
    meta: Omit<CommitRecordMeta, 'message'> & { message?: string | undefined },
  ): SettingsChangeResult {
    const before = this.head.settings;
    const diff = diffSettings(before, after);
    if (diff.length === 0) {
      return { changed: false, ...this.current(), diff: [], restartNeeded: [] };
    }
    const commit = this.commit(after, { ...meta, message: meta.message ?? describeDiff(diff) });
    return {
      changed: true,
      revision: commit.revision,
      settings: { ...after },
      diff: commit.diff,
      restartNeeded: restartNeeded(before, after),
    };
  }

  /**
   * Writes revisions/<n>.json, then HEAD (the commit point), then moves damaged or never-current
   * revision files aside. n is above every revision file present, so no file is ever replaced.
   */
  private commit(settings: Settings, meta: CommitRecordMeta): SettingsCommit {
    const revisionsDir = join(this.dir, REVISIONS_DIR);
    removeTempFiles(this.dir);
    removeTempFiles(revisionsDir);
    const highest = Math.max(this.scan.highestRevision, ...this.revisionsOnDisk());
    const previous = this.scan.empty || !this.head ? null : this.head;
    const commit: SettingsCommit = {
      revision: highest + 1,
      time: this.now().toISOString(),
      source: meta.source,
      ...(meta.requestedBy ? { requestedBy: meta.requestedBy } : {}),
      ...(meta.restoredRevision !== undefined ? { restoredRevision: meta.restoredRevision } : {}),
      message: meta.message,
      settings: { ...settings },
      diff: previous ? diffSettings(previous.settings, settings) : [],
      sha256: settingsSha256(settings),
    };
    let repaired: string | null = null;
    try {
      writeFileAtomic(
        join(revisionsDir, revisionFileName(commit.revision)),
        serializeCommit(commit),
        this.writeOptions(),
      );
      if (this.scan.headFileDamaged && existsSync(join(this.dir, HEAD_FILE))) {
        repaired = this.moveAside([HEAD_FILE], { copy: true });
      }
      writeFileAtomic(join(this.dir, HEAD_FILE), `${commit.revision}\n`, this.writeOptions());
    } catch (error) {
      this.stale = true;
      throw error;
    }
    if (this.scan.moveAside.length > 0) {
      try {
        repaired = this.moveAside(this.scan.moveAside, { into: repaired ?? undefined });
      } catch (error) {
        this.stale = true;
        this.warningList.push(
          `settings: could not move damaged revisions aside: ${(error as Error).message}`,
        );
      }
    }
    if (this.scan.headNeedsRepair || repaired) {
      this.warningList.push(
        `settings: repaired: HEAD names revision ${commit.revision}` +
          (repaired ? `; damaged files moved to ${repaired}` : ''),
      );
    }
    this.head = commit;
    this.commits = [...(this.scan.empty ? [] : this.commits), commit];
    this.scan = {
      ...this.scan,
      empty: false,
      head: commit,
      headNeedsRepair: false,
      headFileDamaged: false,
      moveAside: [],
      highestRevision: commit.revision,
    };
    return commit;
  }

  /** Moves (or copies) files, relative to the store, into a new damaged/<time>/ folder. */
  private moveAside(files: readonly string[], how: { copy?: boolean; into?: string } = {}): string {
    const target = how.into ?? this.newDamagedDir();
    for (const file of files) {
      const from = join(this.dir, file);
      if (!existsSync(from)) continue;
      const to = join(target, file);
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      if (how.copy) copyFileSync(from, to);
      else renameSync(from, to);
      fsyncDirectory(dirname(to));
      fsyncDirectory(dirname(from));
    }
    return target;
  }

  private newDamagedDir(): string {
    const stamp = this.now().toISOString().replace(/[:.]/g, '-');
    const parent = join(this.dir, DAMAGED_DIR);
    mkdirSync(parent, { recursive: true, mode: 0o700 });
    for (let i = 1; ; i++) {
      const dir = join(parent, i === 1 ? stamp : `${stamp}-${i}`);
      if (!existsSync(dir)) {
        mkdirSync(dir, { mode: 0o700 });
        return dir;
      }
    }
  }

  /** Revision numbers with a file now, intact or not. */
  private revisionsOnDisk(): number[] {
    return readdirSync(join(this.dir, REVISIONS_DIR))
      .map(revisionOfFileName)
      .filter((n): n is number => n !== null);
  }

  private noSuchRevision(revision: number): string {
    const reason = this.scan.damaged.get(revision);
    if (reason !== undefined) {
      return `revision ${revision} is damaged (${reason}) and cannot be restored`;
    }
    const first = this.commits[0]?.revision ?? 0;
    return `there is no revision ${revision}; the revisions are ${first} to ${this.head.revision}`;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private writeOptions() {
    return this.options.beforeRename ? { beforeRename: this.options.beforeRename } : {};
  }
}

interface CommitRecordMeta {
  source: CommitSource;
  requestedBy?: ChangeSource | undefined;
  restoredRevision?: number;
  message: string;
}

/** Settings are private (DESIGN.md: 0700 directories); a store made before that is tightened. */
function chmodPrivate(dir: string): void {
  try {
    chmodSync(dir, 0o700);
  } catch {
    // Not ours to change (another owner): the store still works.
  }
}

function checkMeta(meta: { source: unknown; message?: unknown }): void {
  if (!CHANGE_SOURCES.includes(meta.source as ChangeSource)) {
    throw new SettingsStoreError(
      `a change's source must be one of ${CHANGE_SOURCES.join(', ')} (got ${JSON.stringify(meta.source)})`,
    );
  }
  if (meta.message !== undefined && typeof meta.message !== 'string') {
    throw new SettingsStoreError("a change's message must be text");
  }
}
