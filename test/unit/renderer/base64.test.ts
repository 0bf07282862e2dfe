// Session bytes as base64 (renderer/src/api/base64.ts): exact round trips for every byte value,
// UTF-8 for what a terminal emits, inputs beyond one String.fromCharCode call, and paste splitting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  base64ToBytes,
  bytesToBase64,
  splitBytes,
  utf8Bytes,
} from '../../../renderer/src/api/base64.ts';

test('every byte value survives a round trip, and matches Node’s own base64', () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = bytesToBase64(bytes);
  assert.equal(text, Buffer.from(bytes).toString('base64'));
  assert.deepEqual(base64ToBytes(text), bytes);
});

test('empty input is empty both ways', () => {
  assert.equal(bytesToBase64(new Uint8Array()), '');
  assert.deepEqual(base64ToBytes(''), new Uint8Array());
});

test('inputs larger than one conversion chunk are encoded whole', () => {
  const bytes = Uint8Array.from({ length: 200_001 }, (_, i) => (i * 7) & 0xff);
  assert.equal(bytesToBase64(bytes), Buffer.from(bytes).toString('base64'));
});

test('terminal input is sent as UTF-8', () => {
  assert.deepEqual([...utf8Bytes('é→\r')], [0xc3, 0xa9, 0xe2, 0x86, 0x92, 0x0d]);
  assert.equal(
    bytesToBase64(utf8Bytes('uname -a\r')),
    Buffer.from('uname -a\r').toString('base64'),
  );
});

test('splitBytes cuts into pieces of at most max bytes, in order, covering everything', () => {
  const bytes = Uint8Array.from({ length: 10 }, (_, i) => i);
  const pieces = splitBytes(bytes, 4);
  assert.deepEqual(
    pieces.map((p) => [...p]),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ],
  );
  assert.deepEqual(splitBytes(new Uint8Array(), 4), []);
  assert.throws(() => splitBytes(bytes, 0), RangeError);
});
