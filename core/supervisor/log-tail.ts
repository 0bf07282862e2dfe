// The last lines of a log file without reading all of it: serial logs grow across boots.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const CHUNK = 64 * 1024;

/** The last `lines` lines of `path` ('' when the file does not exist yet). */
export function readTail(path: string, lines: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    let start = size;
    const chunks: Buffer[] = [];
    let newlines = 0;
    // Read backwards a chunk at a time until we have enough newlines (or the whole file), and
    // decode once at the end so a character split across chunks stays whole.
    while (start > 0 && newlines <= lines) {
      const length = Math.min(CHUNK, start);
      start -= length;
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, start);
      chunks.unshift(buffer);
      newlines += countNewlines(buffer);
    }
    const all = Buffer.concat(chunks).toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n');
  } finally {
    closeSync(fd);
  }
}

function countNewlines(buffer: Buffer): number {
  let count = 0;
  for (let i = buffer.indexOf(0x0a); i >= 0; i = buffer.indexOf(0x0a, i + 1)) count++;
  return count;
}
