// Shared libraries by soname, across the unpacked Debian packages a spec lists for them: both the
// initrd and the system image find what their ELF files need here. A library's symlinks are
// followed inside its package to the real file.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DebianPackage } from './debian.ts';
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
