// A deterministic cpio writer in the "newc" format the Linux kernel unpacks into its initramfs.
// Determinism is the point: entries are written in path order, with inode numbers assigned in that
// order, owner root and mtime 0, so the same tree always gives the same bytes (and sha256).
import { posix } from 'node:path';

export type CpioEntry =
  | { kind: 'directory'; mode: number }
  | { kind: 'file'; mode: number; data: Uint8Array }
  | { kind: 'symlink'; target: string }
  | { kind: 'char-device'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

/** Normalizes "/a/b" or "a/b/" to "a/b"; rejects paths that escape the archive root. */
export function archivePath(path: string): string {
  const normal = posix.normalize(`/${path}`).slice(1).replace(/\/$/, '');
  if (normal === '' || normal.startsWith('..'))
    throw new Error(`cpio: invalid path ${JSON.stringify(path)}`);
  return normal;
}

export class CpioArchive {
  private readonly entries = new Map<string, CpioEntry>();

  /** Adds an entry and any missing parent directories (mode 0755). A path can be added once. */
  add(path: string, entry: CpioEntry): void {
    const name = archivePath(path);
    const existing = this.entries.get(name);
    if (existing) {
      if (existing.kind === 'directory' && entry.kind === 'directory') return;
      throw new Error(`cpio: ${name} is added twice`);
    }
    const parent = posix.dirname(name);
    if (parent !== '.') this.add(parent, { kind: 'directory', mode: 0o755 });
    this.entries.set(name, entry);
  }

  has(path: string): boolean {
    return this.entries.has(archivePath(path));
  }

  get(path: string): CpioEntry | undefined {
    return this.entries.get(archivePath(path));
  }

  paths(): string[] {
    return [...this.entries.keys()].sort(comparePaths);
  }

  /** The archive as bytes, terminated by the TRAILER!!! entry. */
  toBuffer(): Buffer {
    const chunks: Buffer[] = [];
    let ino = 1;
    for (const name of this.paths()) {
      const entry = this.entries.get(name)!;
      chunks.push(...encodeEntry(name, entry, ino++));
    }
    chunks.push(...encodeEntry(TRAILER, null, 0));
    return Buffer.concat(chunks);
  }
}

/** Byte order of the UTF-8 paths: parents always sort before their children. */
function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`cpio: field value ${value} does not fit in 32 bits`);
  }
  return value.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function encodeEntry(name: string, entry: CpioEntry | null, ino: number): Buffer[] {
  let mode = 0;
  let data: Uint8Array = new Uint8Array(0);
  let nlink = 1;
  let rdev = [0, 0];
  if (entry?.kind === 'directory') {
    mode = S_IFDIR | entry.mode;
    nlink = 2;
  } else if (entry?.kind === 'file') {
    mode = S_IFREG | entry.mode;
    data = entry.data;
  } else if (entry?.kind === 'symlink') {
    mode = S_IFLNK | 0o777;
    data = Buffer.from(entry.target);
  } else if (entry?.kind === 'char-device') {
    mode = S_IFCHR | entry.mode;
    rdev = [entry.major, entry.minor];
  }
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [
    ino,
    mode,
    0,
    0,
    nlink,
    0,
    data.length,
    0,
    0,
    rdev[0]!,
    rdev[1]!,
    nameBytes.length,
    0,
  ];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return [
    header,
    nameBytes,
    pad4(header.length + nameBytes.length),
    Buffer.from(data),
    pad4(data.length),
  ];
}
