// Builds a small freestanding guest program for the VMM tests at test time: C compiled with gcc
// (-ffreestanding -mgeneral-regs-only -mno-red-zone -nostdlib -Os) for 64-bit code at a fixed
// address, linked so that `_start` (put in section .text.start) is the first byte, and turned
// into a flat binary with objcopy. Builds are cached by source hash under the OS temp dir.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why guest programs cannot be built here, or null. */
export function guestToolchainMissing(): string | null {
  for (const tool of ['gcc', 'objcopy']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed: skipping the tests that build guest programs`;
    }
  }
  return null;
}

export const GUEST_LOAD_ADDRESS = 0x100000;

/** A flat binary of `source` linked at `loadAddress`; `_start` must be first. */
export function buildGuestProgram(source: string, loadAddress = GUEST_LOAD_ADDRESS): Uint8Array {
  const key = createHash('sha256').update(`${loadAddress}\n${source}`).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'berth-guest-programs');
  const out = join(dir, `${key}.bin`);
  if (existsSync(out)) return new Uint8Array(readFileSync(out));
  mkdirSync(dir, { recursive: true });
  const c = join(dir, `${key}.c`);
  const ld = join(dir, `${key}.ld`);
  const elf = join(dir, `${key}.elf`);
  writeFileSync(c, source);
  writeFileSync(
    ld,
    `ENTRY(_start)
SECTIONS {
  . = 0x${loadAddress.toString(16)};
  .text : { *(.text.start) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) }
  .data : { *(.data .data.*) }
  .bss : { *(.bss .bss.*) *(COMMON) }
  /DISCARD/ : { *(.eh_frame) *(.note*) *(.comment) }
}
`,
  );
  execFileSync(
    'gcc',
    [
      '-m64',
      '-ffreestanding',
      '-fno-pic',
      '-fno-stack-protector',
      '-fno-asynchronous-unwind-tables',
      '-mgeneral-regs-only',
      '-mno-red-zone',
      '-nostdlib',
      '-static',
      '-no-pie',
      '-Os',
      '-Wall',
      '-Werror',
      `-Wl,-T,${ld}`,
      '-Wl,--build-id=none',
      '-o',
      elf,
      c,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  execFileSync('objcopy', ['-O', 'binary', elf, out]);
  return new Uint8Array(readFileSync(out));
}
