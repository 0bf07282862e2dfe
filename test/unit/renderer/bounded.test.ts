// Bounded buffers (renderer/src/state/bounded.ts): the last N samples, and a log capped by
// characters that drops whole lines from the front.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendCapped, pushSample } from '../../../renderer/src/state/bounded.ts';

test('pushSample keeps the newest `capacity` samples, oldest first', () => {
  let samples: { at: number }[] = [];
  for (let at = 1; at <= 65; at++) samples = pushSample(samples, { at }, 60);
  assert.equal(samples.length, 60);
  assert.equal(samples[0]!.at, 6);
  assert.equal(samples.at(-1)!.at, 65);
});

test('pushSample ignores a repeat of the newest sample', () => {
  const samples = pushSample([{ at: 1 }], { at: 1 }, 60);
  assert.equal(samples.length, 1);
});

test('appendCapped appends while under the cap', () => {
  assert.equal(appendCapped('a\n', 'b\n', 100), 'a\nb\n');
});

test('appendCapped drops whole lines from the front to fit', () => {
  const text = appendCapped('line one\nline two\n', 'line three\n', 22);
  assert.equal(text, 'line two\nline three\n');
  assert.equal(appendCapped('line one\nline two\n', 'line three\n', 19), 'line three\n');
  assert.equal(
    appendCapped('aaaa\nbbbb\n', 'cccc\n', 10),
    'bbbb\ncccc\n',
    'exactly at a line start',
  );
});

test('appendCapped cuts mid-line only when one line is longer than the cap', () => {
  assert.equal(appendCapped('', 'x'.repeat(30), 10), 'x'.repeat(10));
});
