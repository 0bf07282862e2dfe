// manifest.json: what the factory image is made of and the sha256 of every artifact, so a build
// can be checked (verifyImage) and two builds compared byte for byte. No timestamps: the same
// inputs give the same manifest.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ARTIFACTS = ['vmlinuz', 'initrd.img', 'cmdline'] as const;
/** The read-only system image (squashfs), present when the spec has a `system` section. */
export const SYSTEM_IMAGE = 'system.img';
export type ArtifactName = (typeof ARTIFACTS)[number] | typeof SYSTEM_IMAGE;

export interface ImageManifest {
  name: string;
  kernel: { package: string; version: string; release: string };
  packages: { name: string; version: string; sha256: string }[];
  modules: string[];
  initrd: { entries: number; uncompressedBytes: number };
  artifacts: Record<(typeof ARTIFACTS)[number], ArtifactHash> &
    Partial<Record<typeof SYSTEM_IMAGE, ArtifactHash>>;
}

export interface ArtifactHash {
  sha256: string;
  bytes: number;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function describeArtifacts(
  contents: Record<(typeof ARTIFACTS)[number], Uint8Array> &
    Partial<Record<typeof SYSTEM_IMAGE, Uint8Array>>,
): ImageManifest['artifacts'] {
  const out = {} as ImageManifest['artifacts'];
  for (const name of [...ARTIFACTS, SYSTEM_IMAGE] as const) {
    const data = contents[name];
    if (data) out[name] = { sha256: sha256(data), bytes: data.length };
  }
  return out;
}

/**
 * Hashing the system image (hundreds of MiB) at every start would cost most of a second, so a
 * verified artifact's size, inode and mtime are remembered in `.verified.json`; an artifact whose
 * stat still matches is not hashed again. Anything that rewrites the file changes its mtime.
 */
const VERIFIED_STAMP = '.verified.json';
type Stamp = Record<string, { sha256: string; size: number; ino: number; mtimeMs: number }>;

function readStamp(dir: string): Stamp {
  try {
    return JSON.parse(readFileSync(join(dir, VERIFIED_STAMP), 'utf8')) as Stamp;
  } catch {
    return {};
  }
}

/** Stable text: fixed key order (as constructed) and packages sorted by name. */
export function serializeManifest(manifest: ImageManifest): string {
  const sorted = {
    ...manifest,
    packages: [...manifest.packages].sort((a, b) => a.name.localeCompare(b.name)),
  };
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

export class ImageIntegrityError extends Error {
  constructor(message: string) {
    super(`${message}; rebuild the factory image with \`npm run image\``);
    this.name = 'ImageIntegrityError';
  }
}

/** Reads build/image/manifest.json and checks every artifact against its sha256. */
export function verifyImage(dir: string): ImageManifest {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new ImageIntegrityError(`no factory image in ${dir}`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ImageManifest;
  const stamp = readStamp(dir);
  let stampChanged = false;
  const names: ArtifactName[] = [
    ...ARTIFACTS,
    ...(manifest.artifacts?.[SYSTEM_IMAGE] ? [SYSTEM_IMAGE as ArtifactName] : []),
  ];
  for (const name of names) {
    const expected = manifest.artifacts?.[name];
    const path = join(dir, name);
    if (!expected || !existsSync(path))
      throw new ImageIntegrityError(`factory image: ${name} is missing`);
    const stat = statSync(path);
    const known = stamp[name];
    if (
      known &&
      known.sha256 === expected.sha256 &&
      known.size === stat.size &&
      known.ino === stat.ino &&
      known.mtimeMs === stat.mtimeMs
    )
      continue;
    const actual = sha256(readFileSync(path));
    if (actual === expected.sha256 && stat.size > 1 << 20) {
      stamp[name] = { sha256: actual, size: stat.size, ino: stat.ino, mtimeMs: stat.mtimeMs };
      stampChanged = true;
    }
    if (actual !== expected.sha256) {
      throw new ImageIntegrityError(
        `factory image: ${name} has sha256 ${actual}, manifest says ${expected.sha256}`,
      );
    }
  }
  if (stampChanged) {
    try {
      writeFileSync(join(dir, VERIFIED_STAMP), JSON.stringify(stamp));
    } catch {
      // A read-only image directory is fine: it is hashed again next time.
    }
  }
  return manifest;
}
