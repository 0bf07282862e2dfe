// The factory image builder: ImageSpec + Debian packages + native/guest programs ->
// vmlinuz, initrd.img (gzip'd newc cpio), cmdline and manifest.json. The same inputs give the
// same bytes: the cpio writer is deterministic and nothing depends on time or directory order.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CpioArchive } from './cpio.ts';
import { type DebianPackage, DebianPackageCache, dependencyNames } from './debian.ts';
import { isElf } from './elf.ts';
import { resolveModules } from './kernel-modules.ts';
import {
  type ImageManifest,
  SYSTEM_IMAGE,
  describeArtifacts,
  serializeManifest,
} from './manifest.ts';
import { type ImageSpec, ImageSpecError } from './spec.ts';
import { stageSystemTree, writeSquashfs } from './system-image.ts';
import { LibraryIndex, placeSharedLibraries } from './library-index.ts';
import { lookup, readInTree } from './unpacked-tree.ts';

export interface BuildOptions {
  spec: ImageSpec;
  /** Where native/guest's static programs were built. */
  guestDir: string;
  /** Downloaded and unpacked .debs, kept between builds. */
  cacheDir: string;
  outDir: string;
  log?: (line: string) => void;
  /** Each step as it begins, with how far the build is (0..100), for progress bars. */
  progress?: (step: string, percent: number) => void;
}

const LIB_DIR = '/lib/x86_64-linux-gnu';

/** The initrd's skeleton: mount points init expects, and a console for the kernel's first open. */
function addSkeleton(archive: CpioArchive): void {
  for (const dir of [
    '/dev',
    '/proc',
    '/sys',
    '/run',
    '/var',
    '/mnt',
    '/etc/berth',
    '/usr/sbin',
    '/sbin',
  ]) {
    archive.add(dir, { kind: 'directory', mode: 0o755 });
  }
  archive.add('/tmp', { kind: 'directory', mode: 0o1777 });
  archive.add('/root', { kind: 'directory', mode: 0o700 });
  archive.add('/dev/console', { kind: 'char-device', mode: 0o600, major: 5, minor: 1 });
}

/** A kernel metapackage (linux-image-6.12-cloud-amd64) points at the versioned package. */
function kernelPackage(
  debs: DebianPackageCache,
  name: string,
): { pkg: DebianPackage; meta: DebianPackage[] } {
  const meta: DebianPackage[] = [];
  let pkg = debs.get(name, 'kernel.package');
  for (let depth = 0; depth < 4; depth++) {
    const boot = join(pkg.root, 'boot');
    if (existsSync(boot) && readdirSync(boot).some((f) => f.startsWith('vmlinuz-')))
      return { pkg, meta };
    const next = dependencyNames(pkg.depends).find((d) => d.startsWith('linux-image-'));
    if (!next) break;
    meta.push(pkg);
    pkg = debs.get(next, 'kernel.package');
  }
  throw new ImageSpecError(
    'kernel.package',
    `"${name}" does not lead to a package with /boot/vmlinuz-*`,
  );
}

/** Adds the shared libraries (and loader) the ELF files need, transitively. */
function addSharedLibraries(
  archive: CpioArchive,
  elfFiles: { label: string; path: string }[],
  listed: readonly string[],
  libraries: LibraryIndex,
): void {
  const interpreters = placeSharedLibraries(elfFiles, listed, libraries, {
    field: 'libraries',
    image: 'the image',
    libDir: LIB_DIR,
    present: (target) => archive.has(target),
    place: (lib, target) => {
      archive.add(target, {
        kind: 'file',
        mode: lib.mode,
        data: readInTree(lib.pkg.root, lib.path),
      });
      return join(lib.pkg.root, lib.path);
    },
  });
  for (const interp of interpreters) {
    if (archive.has(interp)) continue;
    const inLibDir = `${LIB_DIR}/${basename(interp)}`;
    if (!archive.has(inLibDir))
      throw new ImageSpecError('libraries', `no package ships the ELF loader ${interp}`);
    archive.add(interp, { kind: 'symlink', target: inLibDir });
  }
}

function addBusyboxApplets(
  archive: CpioArchive,
  pkg: DebianPackage,
  field: string,
  busyboxPath: string,
): void {
  const result = spawnSync(join(pkg.root, busyboxPath), ['--list-full'], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new ImageSpecError(field, `cannot list the applets of ${busyboxPath}`);
  for (const applet of result.stdout.split('\n').filter(Boolean).sort()) {
    const path = `/${applet}`;
    if (!archive.has(path)) archive.add(path, { kind: 'symlink', target: busyboxPath });
  }
}

/** Every symlink must lead to something in the initrd: a dangling one is a broken spec. */
function checkSymlinks(archive: CpioArchive): void {
  for (const path of archive.paths()) {
    let current = `/${path}`;
    for (let hops = 0; hops < 40; hops++) {
      const entry = archive.get(current);
      if (entry?.kind !== 'symlink') break;
      current = entry.target.startsWith('/')
        ? entry.target
        : posix.join(posix.dirname(current), entry.target);
    }
    if (!archive.has(current))
      throw new Error(`image: /${path} is a symlink to ${current}, which is not in the initrd`);
  }
}

function writeAtomically(path: string, data: Uint8Array | string): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

export function buildImage(options: BuildOptions): ImageManifest {
  const { spec, guestDir, cacheDir, outDir } = options;
  const log = options.log ?? (() => {});
  const progress = options.progress ?? (() => {});
  const debs = new DebianPackageCache(cacheDir, log);
  progress('looking up the Debian packages', 2);
  debs.lookUp([
    spec.kernel.package,
    ...spec.packages.map((p) => p.name),
    ...spec.libraries,
    ...(spec.system ? [...spec.system.packages, ...spec.system.libraries] : []),
  ]);
  progress(`fetching ${spec.kernel.package}`, 5);
  const archive = new CpioArchive();
  addSkeleton(archive);

  const kernel = kernelPackage(debs, spec.kernel.package);
  const vmlinuzName = readdirSync(join(kernel.pkg.root, 'boot')).find((f) =>
    f.startsWith('vmlinuz-'),
  )!;
  const release = vmlinuzName.slice('vmlinuz-'.length);
  const packages: DebianPackage[] = [...kernel.meta, kernel.pkg];

  const elfFiles: { label: string; path: string }[] = [];
  // Fetching and unpacking packages is most of a first build: 25..70 %, one step per package.
  spec.packages.forEach((p, i) => {
    progress(`fetching ${p.name}`, 25 + Math.round((45 * i) / spec.packages.length));
    const pkg = debs.get(p.name, `packages[${i}].name`);
    packages.push(pkg);
    p.files.forEach((file, j) => {
      const node = lookup(pkg.root, file);
      if (node.kind === 'symlink')
        return archive.add(file, { kind: 'symlink', target: node.target });
      if (node.kind !== 'file') {
        throw new ImageSpecError(
          `packages[${i}].files[${j}]`,
          `${file} is not a file in ${p.name} ${pkg.version}`,
        );
      }
      const data = readInTree(pkg.root, file);
      archive.add(file, { kind: 'file', mode: node.mode, data });
      if (isElf(data)) elfFiles.push({ label: file, path: join(pkg.root, file) });
    });
  });

  spec.guest.forEach((g, i) => {
    const hostPath = join(guestDir, g.program);
    if (!existsSync(hostPath)) {
      throw new ImageSpecError(
        `guest[${i}].program`,
        `${hostPath} is not built (run make -C native/guest)`,
      );
    }
    archive.add(g.path, { kind: 'file', mode: 0o755, data: readFileSync(hostPath) });
    elfFiles.push({ label: g.path, path: hostPath });
  });

  progress('adding shared libraries', 70);
  const libraryPackages = spec.libraries.map((name, i) => debs.get(name, `libraries[${i}]`));
  addSharedLibraries(archive, elfFiles, spec.libraries, new LibraryIndex(libraryPackages));
  packages.push(...libraryPackages);

  let systemImage: Buffer | undefined;
  if (spec.system) {
    progress('staging the system image', 72);
    const tree = stageSystemTree(spec.system, debs, join(cacheDir, 'system-tree'), (soname) =>
      archive.has(`${LIB_DIR}/${soname}`),
    );
    for (const entry of tree.etc) {
      // The spec's own files win over a package's defaults.
      if (archive.has(entry.path) || spec.files.some((f) => f.path === entry.path)) continue;
      archive.add(
        entry.path,
        entry.kind === 'symlink'
          ? { kind: 'symlink', target: entry.target! }
          : { kind: 'file', mode: entry.mode, data: entry.data! },
      );
    }
    packages.push(...tree.packages);
    progress('writing the system image (squashfs)', 76);
    mkdirSync(outDir, { recursive: true });
    const squashfs = join(outDir, `${SYSTEM_IMAGE}.partial`);
    writeSquashfs(tree.root, squashfs);
    systemImage = readFileSync(squashfs);
    log(`image: system image: ${tree.files} files from ${tree.packages.length} packages`);
  }

  progress('adding kernel modules', 80);
  const moduleFiles = resolveModules(kernel.pkg.root, release, spec.modules);
  const modulePaths = moduleFiles.map((rel) => `/lib/modules/${release}/${rel}`);
  for (const path of modulePaths) {
    archive.add(path, { kind: 'file', mode: 0o644, data: readInTree(kernel.pkg.root, path) });
  }
  archive.add('/etc/berth/modules', {
    kind: 'file',
    mode: 0o644,
    data: Buffer.from(modulePaths.join('\n') + '\n'),
  });
  // /etc/berth/modules-<group>: what loading a group takes beyond the boot's modules, in order.
  for (const { name, modules } of spec.moduleGroups) {
    const extra = resolveModules(kernel.pkg.root, release, modules).filter(
      (rel) => !moduleFiles.includes(rel),
    );
    const paths = extra.map((rel) => `/lib/modules/${release}/${rel}`);
    for (const path of paths) {
      if (!archive.has(path))
        archive.add(path, { kind: 'file', mode: 0o644, data: readInTree(kernel.pkg.root, path) });
    }
    archive.add(`/etc/berth/modules-${name}`, {
      kind: 'file',
      mode: 0o644,
      data: Buffer.from(paths.join('\n') + '\n'),
    });
  }

  for (const file of spec.files) {
    archive.add(file.path, { kind: 'file', mode: file.mode, data: Buffer.from(file.contents) });
  }
  spec.packages.forEach((p, i) => {
    if (!p.busyboxApplets) return;
    const busybox = p.files.find((f) => basename(f) === 'busybox');
    if (!busybox)
      throw new ImageSpecError(
        `packages[${i}].files`,
        'busybox-applets needs a file named busybox',
      );
    addBusyboxApplets(archive, debs.get(p.name, `packages[${i}].name`), `packages[${i}]`, busybox);
  });
  checkSymlinks(archive);

  progress('writing and compressing the initrd', 85);
  const cpio = archive.toBuffer();
  const contents = {
    vmlinuz: readInTree(kernel.pkg.root, `/boot/${vmlinuzName}`),
    'initrd.img': gzipSync(cpio, { level: 9 }),
    cmdline: Buffer.from(`${spec.kernel.cmdline}\n`),
    ...(systemImage ? { [SYSTEM_IMAGE]: systemImage } : {}),
  };
  const manifest: ImageManifest = {
    name: spec.name,
    kernel: { package: kernel.pkg.name, version: kernel.pkg.version, release },
    packages: [...new Map(packages.map((p) => [p.name, p])).values()].map(
      ({ name, version, sha256 }) => ({ name, version, sha256 }),
    ),
    modules: moduleFiles.map((f) => basename(f)),
    initrd: { entries: archive.paths().length, uncompressedBytes: cpio.length },
    artifacts: describeArtifacts(contents),
  };
  mkdirSync(outDir, { recursive: true });
  for (const [name, data] of Object.entries(contents)) {
    if (name === SYSTEM_IMAGE)
      renameSync(join(outDir, `${SYSTEM_IMAGE}.partial`), join(outDir, name));
    else writeAtomically(join(outDir, name), data);
  }
  // The manifest goes last: it is the commit point that says the artifacts above belong together.
  writeAtomically(join(outDir, 'manifest.json'), serializeManifest(manifest));
  progress('factory image ready', 100);
  return manifest;
}
