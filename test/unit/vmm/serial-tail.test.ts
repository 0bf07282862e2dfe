// The serial tail: every byte reaches the sink in flushed batches, and the last `limit` bytes
// stay quotable, however many small batches (one per vCPU exit) came before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerialTail } from '../../../core/vmm/serial-tail.ts';

test('the sink gets every byte and the tail keeps the last limit bytes', () => {
  const seen: number[] = [];
  const tail = new SerialTail((bytes) => seen.push(...bytes), 64);
  assert.equal(tail.text(), '');
  let expected = '';
  for (let i = 0; i < 5000; i++) {
    const char = String.fromCharCode(0x20 + (i % 90));
    tail.push(char.charCodeAt(0));
    if (i % 7 === 0) tail.push(0x0a);
    expected += char + (i % 7 === 0 ? '\n' : '');
    if (i % 3 === 0) tail.flush();
    if (i % 1000 === 0) assert.equal(tail.text(), expected.slice(-64));
  }
  assert.equal(tail.text(), expected.slice(-64));
  assert.equal(Buffer.from(seen).toString('latin1'), expected);
  assert.equal(tail.total, expected.length);
});

test('a throwing sink does not lose the tail', () => {
  const tail = new SerialTail(() => {
    throw new Error('disk full');
  }, 8);
  for (const byte of Buffer.from('hello world')) tail.push(byte);
  tail.flush();
  assert.equal(tail.text(), 'lo world');
});
