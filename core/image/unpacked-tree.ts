// Reading files from an unpacked Debian package as if it were the root filesystem: symlinks,
// absolute or relative, are resolved inside that root and never escape it.
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';

export type TreeNode =
  | { kind: 'file'; path: string; mode: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'directory'; path: string }
  | { kind: 'missing'; path: string };

/** What is at `path` (absolute, inside the package) without following a final symlink. */
export function lookup(root: string, path: string): TreeNode {
  let stat;
  try {
    stat = lstatSync(join(root, path));
  } catch {
    return { kind: 'missing', path };
  }
  if (stat.isSymbolicLink())
    return { kind: 'symlink', path, target: readlinkSync(join(root, path)) };
  if (stat.isDirectory()) return { kind: 'directory', path };
  return { kind: 'file', path, mode: stat.mode & 0o7777 };
}

/** Follows symlinks (at most 40, like the kernel) to a regular file inside `root`. */
export function resolveFile(root: string, path: string): { path: string; mode: number } | null {
  let current = posix.normalize(path);
  for (let hops = 0; hops < 40; hops++) {
    const node = lookup(root, current);
    if (node.kind === 'file') return { path: current, mode: node.mode };
    if (node.kind !== 'symlink') return null;
    current = node.target.startsWith('/')
      ? posix.normalize(node.target)
      : posix.normalize(posix.join(posix.dirname(current), node.target));
    if (current.startsWith('..')) return null;
  }
  return null;
}

export function readInTree(root: string, path: string): Buffer {
  return readFileSync(join(root, path));
}
