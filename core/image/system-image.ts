// The read-only system image: whole Debian packages (the container engine) in a squashfs that the
// guest mounts from its own virtio-blk device, so the initrd stays small and the engine's
// hundreds of MiB are paged in from the host's file only as they are used.
//
// The tree is merged-/usr (Debian's /bin, /sbin and /lib land under /usr) because init lays the
// image's /usr over the initrd's; the packages' /etc files are returned for the initrd instead,
// where /etc stays writable. Every ELF file's shared libraries must be found in the tree, in the
// initrd or in the spec's `system.libraries` packages, or the build fails naming the soname.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { DebianPackage, DebianPackageCache } from './debian.ts';
import { isElf } from './elf.ts';
import { LibraryIndex, placeSharedLibraries } from './library-index.ts';
import { ImageSpecError, type SystemSpec } from './spec.ts';

const LIB_DIR = '/usr/lib/x86_64-linux-gnu';

/** A file from a package's /etc, for the initrd. */
export interface EtcEntry {
  path: string;
  kind: 'file' | 'symlink';
  mode: number;
  data?: Buffer;
  target?: string;
}

export interface SystemTree {
  /** The staged tree (hard links into the package cache), ready for mksquashfs. */
  root: string;
  etc: EtcEntry[];
  packages: DebianPackage[];
  files: number;
}

/** Debian's split-/usr paths, as they are in a merged-/usr tree. */
export function mergedUsrPath(path: string): string {
  for (const top of ['/bin', '/sbin', '/lib']) {
    if (path === top || path.startsWith(`${top}/`)) return `/usr${path}`;
  }
  return path;
}

function excluded(path: string, exclude: string[]): boolean {
  return exclude.some((e) => path === e || path.startsWith(`${e}/`));
}

function* walk(root: string, rel = ''): Generator<string> {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = `${rel}/${name}`;
    yield path;
    if (lstatSync(join(root, path)).isDirectory()) yield* walk(root, path);
  }
}

class Stage {
  /** Staged path -> the package that put it there (to name both in a conflict). */
  private readonly owners = new Map<string, string>();
  readonly elfFiles: { label: string; path: string }[] = [];
  files = 0;

  constructor(readonly root: string) {}

  has(path: string): boolean {
    return this.owners.has(path);
  }

  directory(path: string): void {
    mkdirSync(join(this.root, path), { recursive: true, mode: 0o755 });
  }

  add(path: string, source: string, owner: string, field: string): void {
    const previous = this.owners.get(path);
    if (previous !== undefined) {
      throw new ImageSpecError(field, `${path} is shipped by both ${previous} and ${owner}`);
    }
    this.owners.set(path, owner);
    const to = join(this.root, path);
    mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
    const stat = lstatSync(source);
    if (stat.isSymbolicLink()) {
      symlinkSync(readlinkSync(source), to);
      return;
    }
    // A hard link costs nothing; a different filesystem gets a copy.
    try {
      linkSync(source, to);
    } catch {
      copyFileSync(source, to);
    }
    this.files++;
    if (stat.size >= 4 && isElf(readHead(source))) this.elfFiles.push({ label: path, path: to });
  }

  symlink(path: string, target: string, field: string): void {
    if (this.owners.has(path)) throw new ImageSpecError(field, `${path} already exists`);
    this.owners.set(path, 'system.links');
    mkdirSync(dirname(join(this.root, path)), { recursive: true, mode: 0o755 });
    symlinkSync(target, join(this.root, path));
  }
}

function readHead(path: string): Buffer {
  return readFileSync(path).subarray(0, 4);
}

/**
 * Stages the system tree. `inInitrd(soname)` says whether the initrd already has a library (the
 * loader finds it there first, so it is not duplicated).
 */
export function stageSystemTree(
  spec: SystemSpec,
  debs: DebianPackageCache,
  stageRoot: string,
  inInitrd: (soname: string) => boolean,
): SystemTree {
  rmSync(stageRoot, { recursive: true, force: true });
  const stage = new Stage(stageRoot);
  stage.directory('/usr');
  const etc: EtcEntry[] = [];
  const packages = spec.packages.map((name, i) => debs.get(name, `system.packages[${i}]`));
  packages.forEach((pkg, i) => {
    const field = `system.packages[${i}]`;
    for (const rel of walk(pkg.root)) {
      if (excluded(rel, spec.exclude) || excluded(mergedUsrPath(rel), spec.exclude)) continue;
      const source = join(pkg.root, rel);
      const stat = lstatSync(source);
      if (rel === '/etc' || rel.startsWith('/etc/')) {
        if (stat.isDirectory()) continue;
        etc.push(
          stat.isSymbolicLink()
            ? { path: rel, kind: 'symlink', mode: 0o777, target: readlinkSync(source) }
            : { path: rel, kind: 'file', mode: stat.mode & 0o7777, data: readFileSync(source) },
        );
        continue;
      }
      const path = mergedUsrPath(rel);
      if (!path.startsWith('/usr')) {
        throw new ImageSpecError(field, `${pkg.name} ships ${rel}, outside /usr and /etc`);
      }
      if (stat.isDirectory()) stage.directory(path);
      else stage.add(path, source, pkg.name, field);
    }
  });
  spec.links.forEach(({ path, target }) =>
    stage.symlink(mergedUsrPath(path), target, 'system.links'),
  );

  // Shared libraries, transitively, as the initrd's builder does.
  const libraryPackages = spec.libraries.map((name, i) => debs.get(name, `system.libraries[${i}]`));
  const libraries = new LibraryIndex(libraryPackages);
  placeSharedLibraries(stage.elfFiles, spec.libraries, libraries, {
    field: 'system.libraries',
    image: 'the system image',
    libDir: LIB_DIR,
    present: (target, soname) => inInitrd(soname) || stage.has(target),
    place: (lib, target) => {
      stage.add(target, join(lib.pkg.root, lib.path), lib.pkg.name, 'system.libraries');
      return join(stageRoot, target);
    },
  });
  return { root: stageRoot, etc, packages: [...packages, ...libraryPackages], files: stage.files };
}

/**
 * mksquashfs (squashfs-tools) writes the image; the flags make it reproducible: no timestamps,
 * every file owned by root, no xattrs. lz4: the guest decompresses it under emulation too, and
 * lz4 is by far the cheapest to decompress. Measured on the engine's tree: lz4 0.3 s and 112 MB,
 * lz4 -Xhc 15.8 s and 92 MB (decompressing no faster), zstd -3 0.9 s and 80 MB.
 */
export function writeSquashfs(tree: string, out: string): void {
  rmSync(out, { force: true });
  const result = spawnSync(
    'mksquashfs',
    [
      tree,
      out,
      '-noappend',
      '-no-progress',
      '-quiet',
      '-all-root',
      '-no-xattrs',
      '-mkfs-time',
      '0',
      '-all-time',
      '0',
      '-comp',
      'lz4',
    ],
    { encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: undefined } },
  );
  if (result.error) {
    throw new Error(
      `image: cannot run mksquashfs (install squashfs-tools): ${result.error.message}`,
    );
  }
  if (result.status !== 0) {
    throw new Error(`image: mksquashfs failed: ${(result.stderr || result.stdout).trim()}`);
  }
}
