// passt's stream framing (4-byte big-endian length, then the frame), decoded from arbitrary cuts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  allocPrefixedFrame,
  FrameDecoder,
  FrameStreamError,
  LENGTH_PREFIX_BYTES,
} from '../../../../core/devices/net/index.ts';

function frame(length: number, seed: number): Buffer {
  const out = allocPrefixedFrame(length);
  for (let i = 0; i < length; i++) out[LENGTH_PREFIX_BYTES + i] = (seed + i * 7) & 0xff;
  return out;
}

function drain(decoder: FrameDecoder): Buffer[] {
  const out: Buffer[] = [];
  for (let f = decoder.peek(); f !== null; f = decoder.peek()) {
    out.push(Buffer.from(f));
    decoder.shift();
  }
  return out;
}

describe('FrameDecoder', () => {
  const frames = [frame(14, 1), frame(1514, 2), frame(65535, 3), frame(60, 4)];
  const stream = Buffer.concat(frames);
  const expected = frames.map((f) => f.subarray(LENGTH_PREFIX_BYTES));

  test('whole frames in one chunk come out as they went in', () => {
    const decoder = new FrameDecoder();
    decoder.push(stream);
    assert.equal(decoder.frameCount, 4);
    assert.deepEqual(drain(decoder), expected);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('any cut of the stream, prefixes included, decodes the same', () => {
    for (const size of [1, 2, 3, 5, 7, 1000, 4096, 65536]) {
      const decoder = new FrameDecoder();
      const got: Buffer[] = [];
      for (let at = 0; at < stream.length; at += size) {
        decoder.push(stream.subarray(at, at + size));
        got.push(...drain(decoder));
      }
      assert.deepEqual(got, expected, `chunks of ${size}`);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  test('a length outside 14..65535 is a corrupt stream', () => {
    for (const bad of [0, 13, 65536, 0xffffffff]) {
      const decoder = new FrameDecoder();
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(bad);
      assert.throws(() => decoder.push(prefix), FrameStreamError);
    }
  });

  test('bufferedBytes counts a partial frame', () => {
    const decoder = new FrameDecoder();
    decoder.push(frames[1]!.subarray(0, 100));
    assert.equal(decoder.frameCount, 0);
    assert.equal(decoder.bufferedBytes, 100);
    decoder.push(frames[1]!.subarray(100));
    assert.equal(decoder.frameCount, 1);
    assert.equal(decoder.bufferedBytes, 1514);
  });
});
