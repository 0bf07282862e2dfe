// manifest.json: what the factory image is made of and the sha256 of every artifact, so a build
// can be checked (verifyImage) and two builds compared byte for byte. No timestamps: the same
// inputs give the same manifest.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ARTIFACTS = ['vmlinuz', 'initrd.img', 'cmdline'] as const;
export type ArtifactName = (typeof ARTIFACTS)[number];

export interface ImageManifest {
  name: string;
  kernel: { package: string; version: string; release: string };
  packages: { name: string; version: string; sha256: string }[];
  modules: string[];
  initrd: { entries: number; uncompressedBytes: number };
  artifacts: Record<ArtifactName, { sha256: string; bytes: number }>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function describeArtifacts(
  contents: Record<ArtifactName, Uint8Array>,
): ImageManifest['artifacts'] {
  const out = {} as ImageManifest['artifacts'];
  for (const name of ARTIFACTS)
    out[name] = { sha256: sha256(contents[name]), bytes: contents[name].length };
  return out;
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
  for (const name of ARTIFACTS) {
    const expected = manifest.artifacts?.[name];
    const path = join(dir, name);
    if (!expected || !existsSync(path))
      throw new ImageIntegrityError(`factory image: ${name} is missing`);
    const actual = sha256(readFileSync(path));
    if (actual !== expected.sha256) {
      throw new ImageIntegrityError(
        `factory image: ${name} has sha256 ${actual}, manifest says ${expected.sha256}`,
      );
    }
  }
  return manifest;
}
