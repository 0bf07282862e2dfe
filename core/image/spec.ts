// The factory image spec (assets/image/*.yaml): parsed and validated into a typed ImageSpec.
// Every error names the field that is wrong, so a bad spec is fixed in one look.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface PackageFiles {
  /** Debian package name, fetched with apt-get download. */
  name: string;
  /** Absolute paths inside the package to copy into the initrd (symlinks are kept as symlinks). */
  files: string[];
  /** For busybox: add a symlink for every applet it lists, where no other file is. */
  busyboxApplets: boolean;
}

export interface GuestProgram {
  /** Name of a binary built by native/guest. */
  program: string;
  /** Where it goes in the initrd. */
  path: string;
}

export interface InlineFile {
  path: string;
  contents: string;
  mode: number;
}

/**
 * The read-only system image (squashfs, its own virtio-blk device): whole Debian packages that are
 * too large for the initrd (the container engine). init mounts it and lays its /usr over the
 * initrd's; the packages' /etc files go into the initrd, where /etc stays writable.
 */
export interface SystemSpec {
  /** Debian packages taken whole (minus `exclude`). */
  packages: string[];
  /** Packages searched for the shared libraries the packages' ELF files need (as `libraries`). */
  libraries: string[];
  /** Paths (and everything under them) left out: documentation, systemd units, ... */
  exclude: string[];
  /** Symlinks to add, path -> target (Debian sets some up with update-alternatives). */
  links: { path: string; target: string }[];
}

export interface ImageSpec {
  name: string;
  kernel: { package: string; cmdline: string };
  modules: string[];
  /**
   * Groups of modules init loads apart from the boot's own (`modules`): when it needs them (btrfs:
   * its raid6 and xor self-benchmarks cost a second of every boot) or off the boot's critical
   * path (the engine's networking). Each group file lists what it needs beyond `modules`.
   */
  moduleGroups: { name: string; modules: string[] }[];
  packages: PackageFiles[];
  libraries: string[];
  guest: GuestProgram[];
  files: InlineFile[];
  system: SystemSpec | null;
}

export class ImageSpecError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`image spec: ${field}: ${problem}`);
    this.name = 'ImageSpecError';
  }
}

const DEBIAN_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const MODULE_NAME = /^[A-Za-z0-9_-]+$/;
const GUEST_PROGRAM = /^[a-z0-9][a-z0-9_-]*$/;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, field: string): Obj {
  if (!isObject(value)) throw new ImageSpecError(field, 'must be a mapping');
  return value;
}

function onlyKeys(value: Obj, field: string, allowed: string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new ImageSpecError(`${field}.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
    }
  }
}

function string(value: unknown, field: string, pattern?: RegExp, hint?: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ImageSpecError(field, 'must be a non-empty string');
  }
  if (pattern && !pattern.test(value)) {
    throw new ImageSpecError(field, `${JSON.stringify(value)} is not ${hint ?? `like ${pattern}`}`);
  }
  return value;
}

function list<T>(value: unknown, field: string, item: (v: unknown, f: string) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ImageSpecError(field, 'must be a list');
  return value.map((v, i) => item(v, `${field}[${i}]`));
}

function absolutePath(value: unknown, field: string): string {
  const path = string(value, field);
  if (!path.startsWith('/') || path.split('/').some((part) => part === '..' || part === '.')) {
    throw new ImageSpecError(
      field,
      `${JSON.stringify(path)} must be an absolute path without . or ..`,
    );
  }
  return path;
}

function unique<T>(items: T[], key: (t: T) => string, field: string): T[] {
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new ImageSpecError(field, `${JSON.stringify(k)} appears twice`);
    seen.add(k);
  }
  return items;
}

function packageFiles(value: unknown, field: string): PackageFiles {
  const obj = object(value, field);
  onlyKeys(obj, field, ['name', 'files', 'busybox-applets']);
  const busyboxApplets = obj['busybox-applets'] ?? false;
  if (typeof busyboxApplets !== 'boolean') {
    throw new ImageSpecError(`${field}.busybox-applets`, 'must be true or false');
  }
  const files = list(obj.files, `${field}.files`, absolutePath);
  if (files.length === 0) throw new ImageSpecError(`${field}.files`, 'must list at least one file');
  return {
    name: string(obj.name, `${field}.name`, DEBIAN_NAME, 'a Debian package name'),
    files,
    busyboxApplets,
  };
}

function inlineFile(value: unknown, field: string): InlineFile {
  const obj = object(value, field);
  onlyKeys(obj, field, ['path', 'contents', 'mode']);
  if (typeof obj.contents !== 'string')
    throw new ImageSpecError(`${field}.contents`, 'must be a string');
  const mode = obj.mode ?? '0644';
  if (typeof mode !== 'string' || !/^0?[0-7]{3}$/.test(mode)) {
    throw new ImageSpecError(`${field}.mode`, 'must be an octal string such as "0644"');
  }
  return {
    path: absolutePath(obj.path, `${field}.path`),
    contents: obj.contents,
    mode: parseInt(mode, 8),
  };
}

function systemSpec(value: unknown, field: string): SystemSpec | null {
  if (value === undefined) return null;
  const obj = object(value, field);
  onlyKeys(obj, field, ['packages', 'libraries', 'exclude', 'links']);
  const debianName = (v: unknown, f: string) => string(v, f, DEBIAN_NAME, 'a Debian package name');
  const links = object(obj.links ?? {}, `${field}.links`);
  const spec: SystemSpec = {
    packages: list(obj.packages, `${field}.packages`, debianName),
    libraries: list(obj.libraries, `${field}.libraries`, debianName),
    exclude: list(obj.exclude, `${field}.exclude`, absolutePath),
    links: Object.entries(links).map(([path, target]) => ({
      path: absolutePath(path, `${field}.links`),
      target: string(target, `${field}.links.${path}`),
    })),
  };
  if (spec.packages.length === 0)
    throw new ImageSpecError(`${field}.packages`, 'must list at least one package');
  unique(spec.packages, (p) => p, `${field}.packages`);
  unique(spec.libraries, (l) => l, `${field}.libraries`);
  return spec;
}

export function parseImageSpec(text: string): ImageSpec {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new ImageSpecError('(document)', `not valid YAML: ${(error as Error).message}`);
  }
  const top = object(doc, '(document)');
  onlyKeys(top, '(document)', [
    'name',
    'kernel',
    'modules',
    'module-groups',
    'packages',
    'libraries',
    'guest',
    'files',
    'system',
  ]);
  const kernel = object(top.kernel, 'kernel');
  onlyKeys(kernel, 'kernel', ['package', 'cmdline']);
  const spec: ImageSpec = {
    name: string(top.name, 'name', GUEST_PROGRAM, 'a lowercase name'),
    kernel: {
      package: string(kernel.package, 'kernel.package', DEBIAN_NAME, 'a Debian package name'),
      cmdline: string(kernel.cmdline, 'kernel.cmdline'),
    },
    modules: list(top.modules, 'modules', (v, f) =>
      string(v, f, MODULE_NAME, 'a kernel module name'),
    ),
    moduleGroups: Object.entries(object(top['module-groups'] ?? {}, 'module-groups')).map(
      ([name, modules]) => ({
        name: string(name, 'module-groups', GUEST_PROGRAM, 'a lowercase group name'),
        modules: list(modules, `module-groups.${name}`, (v, f) =>
          string(v, f, MODULE_NAME, 'a kernel module name'),
        ),
      }),
    ),
    packages: list(top.packages, 'packages', packageFiles),
    libraries: list(top.libraries, 'libraries', (v, f) =>
      string(v, f, DEBIAN_NAME, 'a Debian package name'),
    ),
    guest: list(top.guest, 'guest', (v, f) => {
      const obj = object(v, f);
      onlyKeys(obj, f, ['program', 'path']);
      return {
        program: string(obj.program, `${f}.program`, GUEST_PROGRAM, 'a program of native/guest'),
        path: absolutePath(obj.path, `${f}.path`),
      };
    }),
    files: list(top.files, 'files', inlineFile),
    system: systemSpec(top.system, 'system'),
  };
  unique(
    [...spec.modules, ...spec.moduleGroups.flatMap((g) => g.modules)],
    (m) => m.replaceAll('-', '_'),
    'modules',
  );
  unique(spec.packages, (p) => p.name, 'packages');
  unique(spec.libraries, (l) => l, 'libraries');
  unique(
    [
      ...spec.packages.flatMap((p) => p.files),
      ...spec.guest.map((g) => g.path),
      ...spec.files.map((f) => f.path),
    ],
    (p) => p,
    'paths',
  );
  if (!spec.guest.some((g) => g.path === '/init')) {
    throw new ImageSpecError('guest', 'one program must be installed at /init (the guest init)');
  }
  return spec;
}

export function loadImageSpec(path: string): ImageSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ImageSpecError('(file)', `cannot read ${path}: ${(error as Error).message}`);
  }
  return parseImageSpec(text);
}
