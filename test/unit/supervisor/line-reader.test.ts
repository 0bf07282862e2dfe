// LineReader (core/supervisor/line-reader.ts): newline-delimited messages out of a byte stream,
// however the bytes are chunked, with a bound on how long one line may be.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineReader } from '../../../core/supervisor/line-reader.ts';

function reader(maxBytes = 1024) {
  const lines: string[] = [];
  const lineReader = new LineReader(maxBytes, (line) => lines.push(line));
  const push = (data: string | Buffer) =>
    lineReader.push(typeof data === 'string' ? Buffer.from(data) : data);
  return { lines, push };
}

test('one chunk with one line', () => {
  const { lines, push } = reader();
  assert.equal(push('{"id":1}\n'), true);
  assert.deepEqual(lines, ['{"id":1}']);
});

test('several lines in one chunk come out in order', () => {
  const { lines, push } = reader();
  assert.equal(push('a\nbb\nccc\n'), true);
  assert.deepEqual(lines, ['a', 'bb', 'ccc']);
});

test('a line split across chunks is joined; nothing comes out before its newline', () => {
  const { lines, push } = reader();
  push('{"jsonrpc":');
  push('"2.0",');
  assert.deepEqual(lines, []);
  push('"id":1}\n{"id"');
  assert.deepEqual(lines, ['{"jsonrpc":"2.0","id":1}']);
  push(':2}');
  push('\n');
  assert.deepEqual(lines, ['{"jsonrpc":"2.0","id":1}', '{"id":2}']);
});

test('every byte in its own chunk still gives the same lines', () => {
  const { lines, push } = reader();
  for (const byte of Buffer.from('first\nsecond\n')) push(Buffer.from([byte]));
  assert.deepEqual(lines, ['first', 'second']);
});

test('a multi-byte character split between chunks is decoded whole', () => {
  const { lines, push } = reader();
  const bytes = Buffer.from('héllo ✓\n');
  // Split inside "é" (2 bytes) and inside "✓" (3 bytes).
  push(bytes.subarray(0, 2));
  push(bytes.subarray(2, 8));
  push(bytes.subarray(8));
  assert.deepEqual(lines, ['héllo ✓']);
});

test('blank and whitespace-only lines are skipped; CRLF and padding are trimmed', () => {
  const { lines, push } = reader();
  push('\n\n  \n\t\na\r\n\r\n  b  \n');
  assert.deepEqual(lines, ['a', 'b']);
});

test('the trailing part without a newline waits for more', () => {
  const { lines, push } = reader();
  push('done\npartial');
  assert.deepEqual(lines, ['done']);
  push('\n');
  assert.deepEqual(lines, ['done', 'partial']);
});

test('a line of exactly the limit is accepted, in one chunk or several', () => {
  const one = reader(10);
  assert.equal(one.push(`${'x'.repeat(10)}\n`), true);
  assert.deepEqual(one.lines, ['x'.repeat(10)]);
  const split = reader(10);
  assert.equal(split.push('x'.repeat(6)), true);
  assert.equal(split.push('y'.repeat(4)), true);
  assert.equal(split.push('\nnext\n'), true);
  assert.deepEqual(split.lines, [`${'x'.repeat(6)}${'y'.repeat(4)}`, 'next']);
});

test('the limit is per line: many short lines add up to more than it', () => {
  const { lines, push } = reader(4);
  assert.equal(push('abcd\nefgh\nijkl\n'), true);
  assert.equal(push('mn'), true);
  assert.equal(push('op\n'), true);
  assert.deepEqual(lines, ['abcd', 'efgh', 'ijkl', 'mnop']);
});

test('a line over the limit in one chunk returns false', () => {
  const { lines, push } = reader(10);
  assert.equal(push(`${'x'.repeat(11)}\n`), false);
  assert.deepEqual(lines, []);
});

test('a line growing over the limit across chunks returns false before its newline', () => {
  const { lines, push } = reader(10);
  assert.equal(push('x'.repeat(6)), true);
  assert.equal(push('x'.repeat(5)), false);
  assert.deepEqual(lines, []);
});

test('lines before the long one in the same chunk are still delivered', () => {
  const { lines, push } = reader(5);
  assert.equal(push(`ok\nfine\n${'z'.repeat(6)}\nlater\n`), false);
  assert.deepEqual(lines, ['ok', 'fine']);
});

test('after a line over the limit the reader stops for good', () => {
  const { lines, push } = reader(5);
  assert.equal(push('z'.repeat(6)), false);
  assert.equal(push('\n'), false);
  assert.equal(push('ok\n'), false);
  assert.equal(push('a\nb\n'), false);
  assert.deepEqual(lines, []);
});

test('the limit counts bytes, not characters', () => {
  const { lines, push } = reader(4);
  // "éé" is 2 characters but 4 bytes: fits. "ééé" is 6 bytes: too long.
  assert.equal(push('éé\n'), true);
  assert.deepEqual(lines, ['éé']);
  assert.equal(push('ééé\n'), false);
  assert.deepEqual(lines, ['éé']);
});
