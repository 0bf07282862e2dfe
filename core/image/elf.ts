// What an ELF binary needs from the dynamic loader: its DT_NEEDED sonames and its interpreter.
// Read with binutils' readelf, the standard tool for the job, instead of a hand-written parser.
import { spawnSync } from 'node:child_process';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export function isElf(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 4)).equals(ELF_MAGIC);
}

export interface ElfNeeds {
  needed: string[];
  interpreter: string | null;
}

export function parseReadelf(output: string): ElfNeeds {
  const needed = [...output.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(
    (m) => m[1]!,
  );
  const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(output);
  return { needed, interpreter: interp ? interp[1]! : null };
}

export function elfNeeds(file: string): ElfNeeds {
  const result = spawnSync('readelf', ['-W', '-d', '-l', file], { encoding: 'utf8' });
  if (result.error)
    throw new Error(`image: cannot run readelf (install binutils): ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`image: readelf ${file} failed: ${result.stderr.trim()}`);
  return parseReadelf(result.stdout);
}
