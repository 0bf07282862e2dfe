// Reading a settings directory back and deciding what is current. HEAD is the commit point: a
// change is made by writing revisions/<n>.json and then HEAD. Anything damaged is skipped, in
// favour of the newest intact revision, and every such decision becomes a warning the user sees.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommitFile, revisionFileName, revisionOfFileName } from './commit.ts';
import type { SettingsCommit } from './commit.ts';

export const HEAD_FILE = 'HEAD';
export const REVISIONS_DIR = 'revisions';

export interface SettingsScan {
  /** No HEAD and no revision files: a new store. */
  empty: boolean;
  /** The current revision; null when nothing intact was found (the store starts over). */
  head: SettingsCommit | null;
  /** Intact revisions up to head, oldest first. */
  commits: SettingsCommit[];
  /** HEAD does not name `head` (missing, damaged, or names a damaged revision). */
  headNeedsRepair: boolean;
  /** HEAD exists but its content is not a revision number: keep a copy before replacing it. */
  headFileDamaged: boolean;
  /** Revision files to move aside at the next write (damaged, or written but never made current). */
  moveAside: string[];
  /** Damaged revisions and why, for messages. */
  damaged: Map<number, string>;
  /** The highest revision number that has a file, intact or not (-1 if none). */
  highestRevision: number;
  warnings: string[];
}

type HeadRead =
  { kind: 'ok'; revision: number } | { kind: 'missing' } | { kind: 'damaged'; reason: string };

export function scanSettingsDir(dir: string): SettingsScan {
  const revisionsDir = join(dir, REVISIONS_DIR);
  const numbers = (existsSync(revisionsDir) ? readdirSync(revisionsDir) : [])
    .map(revisionOfFileName)
    .filter((n): n is number => n !== null)
    .sort((a, b) => a - b);
  const intact = new Map<number, SettingsCommit>();
  const damaged = new Map<number, string>();
  for (const n of numbers) {
    const parsed = readRevision(join(revisionsDir, revisionFileName(n)), n);
    if (parsed.ok) intact.set(n, parsed.commit);
    else damaged.set(n, parsed.reason);
  }
  const headRead = readHead(join(dir, HEAD_FILE));
  const scan: SettingsScan = {
    empty: headRead.kind === 'missing' && numbers.length === 0,
    head: null,
    commits: [],
    headNeedsRepair: false,
    headFileDamaged: headRead.kind === 'damaged',
    moveAside: [],
    damaged,
    highestRevision: numbers.at(-1) ?? -1,
    warnings: [],
  };
  if (scan.empty) return scan;

  const newestIntactUpTo = (limit: number) =>
    [...intact.keys()].filter((n) => n <= limit).at(-1) ?? null;
  const why = (n: number) => (damaged.has(n) ? `damaged (${damaged.get(n)})` : 'missing');
  let headRevision: number | null;
  if (headRead.kind === 'ok') {
    headRevision = newestIntactUpTo(headRead.revision);
    if (headRevision !== headRead.revision) {
      scan.headNeedsRepair = true;
      scan.warnings.push(
        `settings: revision ${headRead.revision} is ${why(headRead.revision)}; ` +
          (headRevision === null
            ? 'no earlier revision is intact'
            : `using revision ${headRevision}`),
      );
    }
    for (const n of numbers.filter((n) => n > headRead.revision)) {
      scan.warnings.push(
        damaged.has(n)
          ? `settings: revision ${n} is damaged (${damaged.get(n)}) and was never made current; ignoring it`
          : `settings: revision ${n} was written but never made current (an interrupted change); ignoring it`,
      );
    }
  } else {
    headRevision = newestIntactUpTo(Infinity);
    scan.headNeedsRepair = true;
    const problem = headRead.kind === 'missing' ? 'missing' : `damaged (${headRead.reason})`;
    scan.warnings.push(
      `settings: HEAD is ${problem}; ` +
        (headRevision === null ? 'no revision is intact' : `using revision ${headRevision}`),
    );
  }

  const named = headRead.kind === 'ok' ? headRead.revision : null;
  for (const [n, reason] of damaged) {
    if (n === named || (named !== null && n > named)) continue; // reported above
    const fate =
      headRevision !== null && n > headRevision ? 'ignoring it' : 'it is left out of history';
    scan.warnings.push(`settings: revision ${n} is damaged (${reason}); ${fate}`);
  }
  if (headRevision !== null) {
    const h = headRevision;
    scan.head = intact.get(h) ?? null;
    scan.commits = [...intact.values()].filter((c) => c.revision <= h);
    scan.moveAside = numbers
      .filter((n) => n > h || damaged.has(n))
      .map((n) => join(REVISIONS_DIR, revisionFileName(n)));
  }
  return scan;
}

function readRevision(path: string, revision: number) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return {
      ok: false as const,
      reason: `unreadable: ${(error as NodeJS.ErrnoException).code ?? error}`,
    };
  }
  return parseCommitFile(text, revision);
}

function readHead(path: string): HeadRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'damaged', reason: `unreadable: ${code ?? error}` };
  }
  const match = /^\s*(0|[1-9]\d*)\s*$/.exec(text);
  if (!match) return { kind: 'damaged', reason: 'not a revision number' };
  return { kind: 'ok', revision: Number(match[1]) };
}
