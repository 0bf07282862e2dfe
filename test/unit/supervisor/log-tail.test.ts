// readTail (core/supervisor/log-tail.ts): the last lines of the serial log, as `berth logs` shows
// them, read from the end of a file that may be far larger than what is asked for.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTail } from '../../../core/supervisor/log-tail.ts';

const CHUNK = 64 * 1024;

function withFile(content: string | Buffer | null, run: (path: string) => void): () => void {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-tail-'));
    try {
      const path = join(dir, 'serial.log');
      if (content !== null) writeFileSync(path, content);
      run(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** "line 1".."line n", one per line, each with a trailing newline. */
const numbered = (n: number, pad = 0) =>
  Array.from({ length: n }, (_, i) => `line ${i + 1}${'.'.repeat(pad)}\n`).join('');
const expectLines = (from: number, to: number, pad = 0) =>
  Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}${'.'.repeat(pad)}`).join('\n');

test(
  'a file that does not exist yet gives the empty string',
  withFile(null, (path) => {
    assert.equal(readTail(path, 10), '');
  }),
);

test(
  'an empty file gives the empty string',
  withFile('', (path) => {
    assert.equal(readTail(path, 10), '');
  }),
);

test(
  'fewer lines than asked: the whole file, without its final newline',
  withFile('a\nb\nc\n', (path) => {
    assert.equal(readTail(path, 10), 'a\nb\nc');
  }),
);

test(
  'exactly as many lines as asked: all of them',
  withFile('a\nb\nc\n', (path) => {
    assert.equal(readTail(path, 3), 'a\nb\nc');
  }),
);

test(
  'more lines than asked: only the last ones',
  withFile('a\nb\nc\n', (path) => {
    assert.equal(readTail(path, 2), 'b\nc');
    assert.equal(readTail(path, 1), 'c');
  }),
);

test(
  'a last line without a newline (the guest is mid-line) counts as a line',
  withFile('a\nb\nc', (path) => {
    assert.equal(readTail(path, 2), 'b\nc');
    assert.equal(readTail(path, 1), 'c');
    assert.equal(readTail(path, 3), 'a\nb\nc');
    assert.equal(readTail(path, 9), 'a\nb\nc');
  }),
);

test(
  'only the final newline is dropped: blank lines inside are kept and counted',
  withFile('a\n\nb\n\n', (path) => {
    assert.equal(readTail(path, 2), 'b\n');
    assert.equal(readTail(path, 3), '\nb\n');
    assert.equal(readTail(path, 10), 'a\n\nb\n');
  }),
);

test(
  'a single line without any newline',
  withFile('booting', (path) => {
    assert.equal(readTail(path, 1), 'booting');
    assert.equal(readTail(path, 5), 'booting');
  }),
);

test(
  'a file of many 64 KiB chunks: a short tail comes from the last chunk',
  withFile(numbered(50_000), (path) => {
    assert.equal(readTail(path, 10), expectLines(49_991, 50_000));
    assert.equal(readTail(path, 1), 'line 50000');
  }),
);

test(
  'a tail longer than one 64 KiB chunk is read across chunks, whole and in order',
  // 40-byte lines: 4000 lines are ~160 KiB, so the tail spans three chunks.
  withFile(numbered(20_000, 29), (path) => {
    const tail = readTail(path, 4000);
    assert.ok(Buffer.byteLength(tail) > 2 * CHUNK);
    assert.equal(tail, expectLines(16_001, 20_000, 29));
  }),
);

test(
  'asking for every line of a multi-chunk file gives the file without its final newline',
  withFile(numbered(12_000, 10), (path) => {
    assert.equal(readTail(path, 12_000), expectLines(1, 12_000, 10));
    assert.equal(readTail(path, 100_000), expectLines(1, 12_000, 10));
  }),
);

test(
  'a single line longer than a chunk is returned whole',
  withFile(`first\n${'x'.repeat(3 * CHUNK + 17)}\nlast\n`, (path) => {
    assert.equal(readTail(path, 2), `${'x'.repeat(3 * CHUNK + 17)}\nlast`);
    assert.equal(readTail(path, 3), `first\n${'x'.repeat(3 * CHUNK + 17)}\nlast`);
  }),
);

test(
  'a newline exactly at a chunk boundary is not lost or doubled',
  // The file is 2 chunks; the byte at the boundary (offset size - CHUNK) is a newline.
  withFile(`${'a'.repeat(CHUNK - 1)}\n${'b'.repeat(CHUNK - 1)}\n`, (path) => {
    assert.equal(readTail(path, 1), 'b'.repeat(CHUNK - 1));
    assert.equal(readTail(path, 2), `${'a'.repeat(CHUNK - 1)}\n${'b'.repeat(CHUNK - 1)}`);
  }),
);

test(
  'UTF-8 text within one chunk is decoded',
  withFile('démarrage ✓\nprêt\n', (path) => {
    assert.equal(readTail(path, 2), 'démarrage ✓\nprêt');
  }),
);

test(
  'a multi-byte character straddling a 64 KiB chunk boundary is decoded whole',
  // "é" is 2 bytes; the line is 100000 bytes, so the read boundary (size - 65536 = 34469) is odd
  // and falls inside an "é".
  withFile(`${'é'.repeat(50_000)}\nend\n`, (path) => {
    const tail = readTail(path, 2);
    assert.equal(tail.includes('\uFFFD'), false, 'no replacement characters');
    assert.equal(tail, `${'é'.repeat(50_000)}\nend`);
  }),
);
