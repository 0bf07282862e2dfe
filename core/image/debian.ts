// Debian packages for the image: looked up with apt-cache, fetched with `apt-get download` into a
// cache (verified against the archive's sha256) and unpacked with `dpkg-deb -x`. Nothing is
// installed on the host, and root is not needed beyond what apt-get download itself needs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, join } from 'node:path';

export interface DebianPackage {
  name: string;
  version: string;
  /** sha256 of the .deb as published in the archive's index. */
  sha256: string;
  /** The Depends field, as written in the package's control data. */
  depends: string;
  /** The unpacked package (dpkg-deb -x). */
  root: string;
}

export class UnknownPackageError extends Error {
  constructor(
    readonly packageName: string,
    readonly field: string,
  ) {
    super(
      `image spec: ${field}: Debian package "${packageName}" is not known to apt; check the name ` +
        `(apt-cache search ${packageName}) or refresh the lists (apt-get update)`,
    );
    this.name = 'UnknownPackageError';
  }
}

function command(
  cmd: string,
  args: string[],
  cwd?: string,
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.error) throw new Error(`image: cannot run ${cmd}: ${result.error.message}`);
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Parses `apt-cache show` output (stanzas separated by blank lines) into their fields. */
export function parseControlStanzas(text: string): Map<string, string>[] {
  const stanzas: Map<string, string>[] = [];
  let fields = new Map<string, string>();
  let key = '';
  for (const line of text.split('\n')) {
    if (line === '') {
      if (fields.size > 0) stanzas.push(fields);
      fields = new Map();
      continue;
    }
    if (/^\s/.test(line) && key) {
      fields.set(key, `${fields.get(key)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) {
      key = line.slice(0, colon);
      fields.set(key, line.slice(colon + 1).trim());
    }
  }
  if (fields.size > 0) stanzas.push(fields);
  return stanzas;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export class DebianPackageCache {
  private readonly debs: string;
  private readonly unpacked: string;
  private readonly known = new Map<string, DebianPackage>();
  private readonly index = new Map<string, Map<string, string>>();

  constructor(
    cacheDir: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.debs = join(cacheDir, 'debs');
    this.unpacked = join(cacheDir, 'unpacked');
    mkdirSync(this.debs, { recursive: true });
    mkdirSync(this.unpacked, { recursive: true });
  }

  /** The candidate version of a package, fetched and unpacked. `field` names it in errors. */
  get(name: string, field: string): DebianPackage {
    const cached = this.known.get(name);
    if (cached) return cached;
    if (!this.index.has(name)) this.lookUp([name]);
    const stanza = this.index.get(name);
    const version = stanza?.get('Version');
    const filename = stanza?.get('Filename');
    const sha256 = stanza?.get('SHA256');
    if (!stanza || !version || !filename || !sha256) throw new UnknownPackageError(name, field);
    const deb = join(this.debs, basename(filename));
    if (!existsSync(deb) || sha256File(deb) !== sha256) this.download(name, version, deb, sha256);
    const root = join(this.unpacked, basename(filename, '.deb'));
    if (!existsSync(root)) this.unpack(deb, root);
    const pkg = { name, version, sha256, depends: stanza.get('Depends') ?? '', root };
    this.known.set(name, pkg);
    return pkg;
  }

  /**
   * Reads the candidate versions of many packages in one apt-cache call (each call costs about
   * half a second). Unknown names are simply absent; get() reports them with their spec field.
   */
  lookUp(names: string[]): void {
    const wanted = names.filter((name) => !this.index.has(name));
    if (wanted.length === 0) return;
    const show = command('apt-cache', ['show', '--no-all-versions', ...wanted]);
    for (const stanza of parseControlStanzas(show.stdout)) {
      const name = stanza.get('Package');
      if (name && wanted.includes(name) && !this.index.has(name)) this.index.set(name, stanza);
    }
  }

  private download(name: string, version: string, deb: string, sha256: string): void {
    this.log(`image: fetching ${name} ${version}`);
    const tmp = mkdtempSync(join(this.debs, '.download-'));
    try {
      const result = command('apt-get', ['download', '-q', `${name}=${version}`], tmp);
      const files = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
      if (result.status !== 0 || files.length !== 1) {
        throw new Error(
          `image: apt-get download ${name}=${version} failed:\n${result.stderr.trim()}`,
        );
      }
      const got = join(tmp, files[0]!);
      const actual = sha256File(got);
      if (actual !== sha256) {
        throw new Error(
          `image: ${name} ${version}: sha256 ${actual} does not match the archive's ${sha256}`,
        );
      }
      renameSync(got, deb);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private unpack(deb: string, root: string): void {
    const tmp = `${root}.partial`;
    rmSync(tmp, { recursive: true, force: true });
    const result = command('dpkg-deb', ['-x', deb, tmp]);
    if (result.status !== 0)
      throw new Error(`image: dpkg-deb -x ${deb} failed: ${result.stderr.trim()}`);
    renameSync(tmp, root);
  }
}

/** The names in a Depends field, without versions or alternatives after the first. */
export function dependencyNames(depends: string): string[] {
  return depends
    .split(',')
    .map(
      (part) =>
        part
          .split('|')[0]!
          .trim()
          .split(/[\s(:]/)[0]!,
    )
    .filter((name) => name.length > 0);
}
