// Shared libraries by soname, across the unpacked Debian packages a spec lists for them: both the
// initrd and the system image find what their ELF files need here. A library's symlinks are
// followed inside its package to the real file.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DebianPackage } from './debian.ts';
import { elfNeeds } from './elf.ts';
import { ImageSpecError } from './spec.ts';
import { resolveFile } from './unpacked-tree.ts';

const LIB_SEARCH = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'];

export interface IndexedLibrary {
  pkg: DebianPackage;
  /** The real file's path inside the package (absolute, as in the root filesystem). */
  path: string;
  mode: number;
}

export class LibraryIndex {
  private readonly bySoname = new Map<string, IndexedLibrary>();

  constructor(packages: DebianPackage[]) {
    for (const pkg of packages) {
      for (const dir of LIB_SEARCH) {
        if (!existsSync(join(pkg.root, dir))) continue;
        for (const name of readdirSync(join(pkg.root, dir)).sort()) {
          if (!/\.so(\.\d+)*$/.test(name) || this.bySoname.has(name)) continue;
          const file = resolveFile(pkg.root, `/${dir}/${name}`);
          if (file) this.bySoname.set(name, { pkg, ...file });
        }
      }
    }
  }

  find(soname: string): IndexedLibrary | undefined {
    return this.bySoname.get(soname);
  }
}

/** Where and how one image takes its shared libraries (the initrd, the system image). */
export interface LibraryPlacement {
  /** The spec's list of library packages ("libraries", "system.libraries"), for messages. */
  field: string;
  /** Whose programs need them ("the image", "the system image"), for messages. */
  image: string;
  /** The directory sonames go to in the image. */
  libDir: string;
  /** Already in the image (or provided by another): neither placed nor walked again. */
  present(target: string, soname: string): boolean;
  /** Puts `lib` at `target`; returns the host path of what it placed, walked for its own needs. */
  place(lib: IndexedLibrary, target: string): string;
}

/**
 * Places the shared libraries that the ELF files need, transitively, from the listed library
 * packages. A soname none of them ships, or a listed package nothing needs, is an ImageSpecError
 * naming the spec field. Returns the ELF interpreters (loaders) the walked files ask for.
 */
export function placeSharedLibraries(
  files: readonly { label: string; path: string }[],
  listed: readonly string[],
  libraries: LibraryIndex,
  how: LibraryPlacement,
): Set<string> {
  const queue = [...files];
  const interpreters = new Set<string>();
  const used = new Set<string>();
  while (queue.length > 0) {
    const { label, path } = queue.shift()!;
    const needs = elfNeeds(path);
    if (needs.interpreter) interpreters.add(needs.interpreter);
    for (const soname of needs.needed) {
      const target = `${how.libDir}/${soname}`;
      if (how.present(target, soname)) continue;
      const lib = libraries.find(soname);
      if (!lib) {
        throw new ImageSpecError(
          how.field,
          `${label} needs ${soname}, which none of the listed packages ships; ` +
            `add the Debian package that has it (dpkg -S ${soname})`,
        );
      }
      used.add(lib.pkg.name);
      queue.push({ label: soname, path: how.place(lib, target) });
    }
  }
  listed.forEach((name, i) => {
    if (!used.has(name)) {
      throw new ImageSpecError(
        `${how.field}[${i}]`,
        `${name} ships no library that ${how.image}'s programs need; remove it`,
      );
    }
  });
  return interpreters;
}
