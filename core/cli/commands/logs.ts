// berth logs [-n LINES] [-f]: the VM's serial console log. It is read straight from
// logs/serial.log (the same user owns it), so it works whether or not the VM runs, and -f keeps
// following across restarts, as `tail -F` does.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readTail } from '../../supervisor/log-tail.ts';
import { printJson } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';

const POLL_MS = 100;

export async function logsCommand(
  { paths, json }: CommandContext,
  options: { lines: number; follow: boolean },
): Promise<number> {
  const text = readTail(paths.serialLog, options.lines);
  if (json && !options.follow) {
    printJson({ path: paths.serialLog, text });
    return 0;
  }
  if (text) process.stdout.write(`${text}\n`);
  if (!options.follow) return 0;
  let offset = sizeOf(paths.serialLog);
  return new Promise(() => {
    setInterval(() => {
      const size = sizeOf(paths.serialLog);
      if (size < offset) offset = 0; // truncated or replaced: start from its beginning
      if (size === offset) return;
      const fd = openSync(paths.serialLog, 'r');
      try {
        const buffer = Buffer.alloc(size - offset);
        readSync(fd, buffer, 0, buffer.length, offset);
        process.stdout.write(buffer);
        offset = size;
      } finally {
        closeSync(fd);
      }
    }, POLL_MS);
  });
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
